"""The local training process: ``python -m rag_ft.training.worker <job_id> <db_path>``.

It runs apart from the Streamlit server (own session, so a page reload or a server restart does not
touch it) and reports only through the job store: status, events, per-step metrics, the validation
loss each epoch, the ETA, a checkpoint per epoch, a heartbeat every few seconds, and finally the
adapter registered as a tuned model. It polls the store's cancel flag before every step.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import traceback
from pathlib import Path

from rag_ft import offline  # noqa: F401
from rag_ft.training.jobs import JobStore, Metric, parse_jsonl

HEARTBEAT_S = 2.0


class Heartbeat(threading.Thread):
    """Writes ``heartbeat_at`` on its own connection, also while the model loads or a step runs."""

    def __init__(self, db_path: str, job_id: str) -> None:
        super().__init__(daemon=True)
        self.store = JobStore(db_path)
        self.job_id = job_id
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.store.heartbeat(self.job_id)
            except Exception:  # a locked database for a moment must not kill training
                pass
            self.done.wait(HEARTBEAT_S)

    def stop(self) -> None:
        self.done.set()


def model_name(base_model: str, suffix: str, job_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", suffix.strip()).strip("-")
    return f"{base_model}-{slug or 'lora'}-{job_id[-6:]}"


def _summary(problems: list[str]) -> str:
    more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
    return " ".join(problems[:3]) + more


def run(job_id: str, db_path: str) -> int:
    """Train one job; returns the process exit code (0 succeeded or cancelled, 1 failed)."""
    import psutil

    store = JobStore(db_path)
    store.update(job_id, pid=os.getpid(), pid_started=psutil.Process().create_time(), heartbeat_at=time.time())
    beat = Heartbeat(db_path, job_id)
    beat.start()
    try:
        return _train(store, job_id)
    except MemoryError:
        store.fail(job_id, "insufficient_memory", "The machine ran out of memory while training. Use a smaller "
                   "batch size, fewer or shorter examples, or close other programs.")
        return 1
    except Exception as exc:  # any failure ends as "failed" with the reason, never as "running"
        store.add_event(job_id, traceback.format_exc()[-2000:], "error")
        store.fail(job_id, "training_error", f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        beat.stop()


def _train(store: JobStore, job_id: str) -> int:
    from rag_ft.training import lora

    job = store.get(job_id)
    store.set_status(job_id, "validating_files", "Validating the training files.")
    train, problems = parse_jsonl(Path(job.train_file).read_bytes(), "training file")
    if problems:
        store.fail(job_id, "invalid_training_file", _summary(problems), "training_file")
        return 1
    validation = None
    if job.validation_file:
        validation, problems = parse_jsonl(Path(job.validation_file).read_bytes(), "validation file")
        if problems:
            store.fail(job_id, "invalid_validation_file", _summary(problems), "validation_file")
            return 1
    memory = lora.free_memory_problem(int(job.hyperparameters.get("min_free_bytes", lora.MIN_FREE_BYTES)))
    if memory:
        store.fail(job_id, "insufficient_memory", memory)
        return 1
    if store.cancel_requested(job_id):
        store.set_status(job_id, "cancelled", "Cancelled before training started.")
        return 0
    hp = job.hyperparameters
    epochs, batch = int(hp.get("epochs", 3)), int(hp.get("batch_size", 4))
    max_steps = int(hp["max_steps"]) if hp.get("max_steps") else None
    n_steps = lora.total_steps(len(train), epochs, batch, max_steps)
    store.update(job_id, total_steps=n_steps)
    store.set_status(job_id, "queued", f"Files validated: {len(train)} training and "
                     f"{len(validation or [])} validation examples. Loading the base model.")
    base = lora.load_base()
    store.set_status(job_id, "running", f"Fine-tuning started: {epochs} epochs, {n_steps} steps of batch {batch}.")

    def on_step(s: lora.StepInfo) -> None:
        store.update(job_id, step=s.step, estimated_finish=time.time() + s.eta_s)
        store.add_metric(job_id, Metric(s.step, s.epoch, s.train_loss, None, s.valid_loss, s.valid_token_accuracy))
        msg = f"Step {s.step}/{s.total_steps}: training loss={s.train_loss:.4f}"
        if s.valid_loss is not None:
            msg += f", validation loss={s.valid_loss:.4f}, token accuracy={s.valid_token_accuracy:.2f}"
        store.add_event(job_id, msg + f" (about {s.eta_s:.0f} s left)")
        if s.checkpoint_dir:
            store.add_checkpoint(job_id, s.step, s.checkpoint_dir, s.epoch,
                                 {"train_loss": s.train_loss, "valid_loss": s.valid_loss})
            store.add_event(job_id, f"Checkpoint saved at step {s.step} (epoch {s.epoch:g}).")

    result = lora.train(
        train, job.folder / "adapter", validation=validation, epochs=epochs, batch_size=batch,
        learning_rate=float(hp.get("learning_rate", 1e-3)), rank=int(hp.get("rank", 8)),
        alpha=int(hp.get("alpha", 16)), seed=int(hp.get("seed", 0)), max_steps=max_steps,
        on_step=on_step, should_stop=lambda: store.cancel_requested(job_id), model=base,
    )
    if result.stopped:
        store.set_status(job_id, "cancelled", f"Cancelled at step {result.steps}/{result.total_steps}.")
        return 0
    store.add_checkpoint(job_id, result.steps, str(result.adapter_dir), float(epochs),
                         {"train_loss": result.final_train_loss, "valid_loss": result.final_valid_loss})
    name = model_name(job.base_model, job.suffix, job_id)
    store.update(job_id, trained_tokens=result.n_tokens * epochs, estimated_finish=None)
    store.register_model(job_id, name, adapter_dir=str(result.adapter_dir))
    store.set_status(job_id, "succeeded", f"New fine-tuned model created: {name} "
                     f"({result.seconds:.0f} s, final training loss {result.final_train_loss:.4f}).")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m rag_ft.training.worker <job_id> <db_path>", file=sys.stderr)
        return 2
    return run(args[0], args[1])


if __name__ == "__main__":
    sys.exit(main())
