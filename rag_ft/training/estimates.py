"""How long a local LoRA job will take, and what a job's validation losses say (the overfitting hint).

Time: a training step's cost grows with the tokens in the batch, so a step rate is (seconds per step, batch
size, mean tokens per example) and scales linearly in batch x mean tokens. The rate comes from this
machine when it can: the latest succeeded local job's metrics rows carry the time each step was logged, and
the job knows its batch size and trained tokens. With no such job the documented default is used: 2.14 s per
step at batch 4 of ~153-token examples on 2 CPU cores (``dataset.LOCAL_SECONDS_PER_STEP``, measured in
shared/local-models.md §4).

Before the first step the worker starts a Python process, imports torch and transformers and loads the base
model: a job that logged its first step says how long that took here (its first step's time, less one step,
after the job was created); with no such job ``LOAD_SECONDS`` is used. Leaving it out made a 114 s job an
estimated 0.6 min (issue #13).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag_ft.settings import LOCAL_CHAT_MODEL
from rag_ft.training import dataset
from rag_ft.training.jobs import JobStore, Metric
from rag_ft.training.lora import total_steps
from rag_ft.training.tokens import TokenizerUnavailable

# process start + imports + base model load before the first step, when no job here measured it: a 2-step job
# on a quiet 2-core machine took 19 s from launch to the start of step 1; a busy machine takes longer
LOAD_SECONDS = 30.0
MAX_STARTUP_S = 1800.0  # a longer "startup" is not one (clock change, a job created long before it ran)
OVERFIT_RISE = 0.05  # the last validation loss this much above the best one (5 %) is a rise, not noise


@dataclass(frozen=True)
class StepRate:
    seconds: float  # per optimizer step, at ...
    batch: int  # ... this batch size, of examples of ...
    tokens_per_example: float  # ... this many tokens on average
    source: str  # where the figure comes from, in words (the page shows it)
    startup: float = LOAD_SECONDS  # seconds before the first step (process, imports, base model)

    def per_step(self, batch: int, mean_tokens: float) -> float:
        """Seconds for one step of ``batch`` examples averaging ``mean_tokens`` tokens."""
        return self.seconds * (max(batch, 1) / self.batch) * (mean_tokens / self.tokens_per_example)


DEFAULT_RATE = StepRate(dataset.LOCAL_SECONDS_PER_STEP, dataset.LOCAL_BATCH, dataset.LOCAL_MEASURED_TOKENS,
                        f"a measured {dataset.LOCAL_SECONDS_PER_STEP} s per step "
                        f"(batch {dataset.LOCAL_BATCH} x ~{dataset.LOCAL_MEASURED_TOKENS} tokens, 2 cores)")


def measured_rate(store: JobStore) -> StepRate | None:
    """The step rate of the latest succeeded local job on this machine; None when no job can tell.

    A job tells when it logged at least two steps and its trained tokens: the time between its first and
    last logged step over the steps in between (so model loading is left out; the validation passes and
    checkpoints at epoch ends are in, as they will be in the next job).
    """
    for job in store.list():  # newest first
        if job.backend != "local" or job.status != "succeeded" or not job.trained_tokens or not job.n_train:
            continue
        times = store.step_times(job.id)
        if len(times) < 2 or times[-1][0] <= times[0][0] or times[-1][1] <= times[0][1]:
            continue
        (s0, t0), (s1, t1) = times[0], times[-1]
        epochs = int(job.hyperparameters.get("epochs", 3)) or 1
        per_step = (t1 - t0) / (s1 - s0)
        startup = t0 - s0 * per_step - job.created_at  # the time before step 1 began
        return StepRate(per_step, int(job.hyperparameters.get("batch_size", 4)) or 1,
                        job.trained_tokens / epochs / job.n_train, f"this computer's pace in job {job.id}",
                        startup if 0 < startup < MAX_STARTUP_S else LOAD_SECONDS)
    return None


@dataclass(frozen=True)
class LocalEstimate:
    steps: int
    seconds: float  # the whole job: model loading + steps
    training_tokens: int  # tokens over all epochs; 0 when they could not be counted (no offline tokenizer)
    rate: StepRate


def local_estimate(records: Sequence[dict[str, Any]], epochs: int, batch: int, max_steps: int = 0,
                   rate: StepRate = DEFAULT_RATE) -> LocalEstimate:
    """Steps, seconds and tokens of a local job on ``records`` (``max_steps`` 0 = all steps)."""
    batch = max(int(batch), 1)
    steps = total_steps(len(records), int(epochs), batch, int(max_steps) or None)  # what the worker will run
    try:
        est = dataset.estimate(records, LOCAL_CHAT_MODEL, epochs)
        limit = dataset.max_tokens_for(LOCAL_CHAT_MODEL)
        counts = [min(limit, c) for c in est.token_counts]
        mean, tokens = (sum(counts) / len(counts) if counts else rate.tokens_per_example), est.training_tokens
    except TokenizerUnavailable:  # no tokenizer: assume examples as long as the measured ones
        mean, tokens = rate.tokens_per_example, 0
    return LocalEstimate(steps, rate.startup + steps * rate.per_step(batch, mean), tokens, rate)


# ---- the overfitting hint --------------------------------------------------------------------------
@dataclass(frozen=True)
class Overfitting:
    best_step: int
    best_loss: float
    last_step: int
    last_loss: float

    @property
    def message(self) -> str:
        return (f"Validation loss rose from {self.best_loss:.3f} (step {self.best_step}) to {self.last_loss:.3f} "
                f"(step {self.last_step}) while training continued: the model may be overfitting. Fewer epochs, "
                f"or the checkpoint at step {self.best_step}, may generalise better.")


def overfitting(metrics: Sequence[Metric], rise: float = OVERFIT_RISE) -> Overfitting | None:
    """Whether the last validation loss is more than ``rise`` above the best earlier one (None: no sign)."""
    valid = [(m.step, m.valid_loss) for m in metrics if m.valid_loss is not None]
    if len(valid) < 2:
        return None
    best_step, best = min(valid, key=lambda x: x[1])
    last_step, last = valid[-1]
    if last > best * (1 + rise) and last_step > best_step:
        return Overfitting(best_step, best, last_step, last)
    return None


# ---- the launch form's one-line estimate -------------------------------------------------------------
def launch_estimate(store: JobStore, records: Sequence[dict[str, Any]], backend: str, base: str, epochs: int,
                    batch: int, max_steps: int = 0) -> str:
    """What the Fine-tuning page says before a launch: steps and minutes (local) or tokens and cost (OpenAI).

    The local time uses this machine's measured pace when a finished local job gives one (``measured_rate``).
    """
    if backend == "local":
        rate = measured_rate(store) or DEFAULT_RATE
        est = local_estimate(records, epochs, batch, max_steps, rate)
        where = "on 2 quiet CPU cores" if rate is DEFAULT_RATE else "at this computer's measured pace"
        per_step = (est.seconds - rate.startup) / est.steps if est.steps else 0.0
        return (f"{est.steps} steps, about {est.seconds / 60:.1f} min {where} (longer while the computer is busy): "
                f"{rate.startup:.0f} s to start and load the model + {est.steps} x {per_step:.1f} s per step, "
                f"from {rate.source}"
                + (f", {est.training_tokens:,} training tokens" if est.training_tokens else "") + " · free")
    try:
        est_ai = dataset.estimate(records, base, int(epochs))
    except TokenizerUnavailable as exc:  # the estimate helps; it must not block a launch
        return f"No estimate ({exc})."
    cost = f"about ${est_ai.cost_usd:.2f}" if est_ai.cost_usd is not None else "price unknown"
    return f"{est_ai.training_tokens:,} training tokens over {est_ai.epochs} epochs · {cost}"
