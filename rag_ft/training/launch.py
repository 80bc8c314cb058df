"""The inputs of a fine-tuning job: the approved examples (and their check before training), the sample
dataset's split, and hyperparameters typed into the Fine-tuning page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_ft.settings import Settings
from rag_ft.training import dataset
from rag_ft.training.estimates import DEFAULT_RATE
from rag_ft.training.examples import ExampleStore
from rag_ft.training.jobs import Job, JobStore, Metric, iso
from rag_ft.training.tokens import TokenizerUnavailable

SAMPLE_VALIDATION_SHARE = 8  # the sample dataset holds out 1 example in 8 (at least 1) for validation


def approved_records(db_path: Path | str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation) records of the approved examples on the Training data page."""
    store = ExampleStore(db_path)
    try:
        return ([e.record() for e in store.list(status="approved", split="train")],
                [e.record() for e in store.list(status="approved", split="validation")])
    finally:
        store.close()


def sample_split(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation) of the sample dataset: its first eighth (at least one example) validates."""
    n_valid = max(1, len(records) // SAMPLE_VALIDATION_SHARE)
    return records[n_valid:], records[:n_valid]


def learning_rate_multiplier(text: str) -> str | float:
    """OpenAI's learning-rate multiplier from the form: "auto" (or empty) lets OpenAI choose, else a number.

    Raises ValueError with the sentence to show when it is neither.
    """
    if text.strip() in ("", "auto"):
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"Learning rate multiplier must be 'auto' or a number (got {text!r}).") from None


@dataclass
class ApprovedCheck:
    """The Training data page's "Check before training": the approved examples as the API would see them."""

    train: list[dict[str, Any]]  # approved training records without format errors (train.jsonl)
    validation: list[dict[str, Any]]  # the same for validation.jsonl
    left_out: int  # approved examples with format errors, left out of both files
    problems: list[tuple[str, str]]  # (level, "#id: message" or a dataset-level message), training data only
    estimate: dataset.Estimate | None  # None when tokens cannot be counted (see ``error``)
    error: str | None = None

    @property
    def passes(self) -> bool:
        return self.estimate is not None and not self.problems

    def price(self) -> tuple[str, str, str]:
        """(label, value, help) of the cost metric: dollars for OpenAI, CPU minutes for the local model."""
        est = self.estimate
        if est is not None and est.cost_usd is not None:
            return "Estimated cost", f"${est.cost_usd:,.2f}", f"{est.training_tokens:,} training tokens"
        if est is not None and est.local_seconds is not None:
            return "Estimated CPU time", f"{est.local_seconds / 60:.1f} min", f"From {DEFAULT_RATE.source}"
        return "Estimated cost", "n/a", "No price is known for this model"


def check_approved(db_path: Path | str, model: str, epochs: int | None = None) -> ApprovedCheck:
    """Validate the approved training examples for ``model``, estimate their cost or time, and pick the clean
    records of both splits for export (``epochs`` None: OpenAI's default)."""
    store = ExampleStore(db_path)
    try:
        train_ex = store.list(status="approved", split="train")
        valid_ex = store.list(status="approved", split="validation")
    finally:
        store.close()
    train = [e.record() for e in train_ex]
    valid = [e.record() for e in valid_ex]
    clean_train = [r for r in train if not dataset.format_errors(r)]
    clean_valid = [r for r in valid if not dataset.format_errors(r)]
    left_out = len(train) - len(clean_train) + len(valid) - len(clean_valid)
    try:
        report = dataset.validate(train, model=model)
        est = dataset.estimate(train, model, epochs=epochs or None)
    except TokenizerUnavailable as exc:  # no offline tokenizer: the files can still be exported
        return ApprovedCheck(clean_train, clean_valid, left_out, [], None, str(exc))
    problems = [(i.level, (f"#{train_ex[i.index].id}: " if i.index >= 0 else "") + i.message) for i in report.issues]
    return ApprovedCheck(clean_train, clean_valid, left_out, problems, est)


def estimate_for(store: JobStore, records: list[dict[str, Any]], backend: str, base: str,
                 hyperparameters: dict[str, Any]) -> str:
    """The page's estimate line from any backend's parameters (each names epochs and batch size its own way)."""
    from rag_ft.training.estimates import launch_estimate

    hp = hyperparameters
    epochs = next((hp[k] for k in ("epochs", "n_epochs") if isinstance(hp.get(k), int)), 3)
    batch = hp.get("batch_size") if isinstance(hp.get("batch_size"), int) else 8
    max_steps = hp.get("max_steps") if isinstance(hp.get("max_steps"), int) else 0
    return launch_estimate(store, records, backend, base, int(epochs), int(batch), int(max_steps))


# ---- the Fine-tuning page's job view -------------------------------------------------------------------
def job_summary(job: Job) -> list[str]:
    """The two caption lines under a job's title: what it trains on, and its hyperparameters (plain text)."""
    hp = ", ".join(f"{k}={v}" for k, v in job.hyperparameters.items() if k != "min_free_bytes")
    return [f"{job.backend} · {job.base_model} · {job.n_train} training / {job.n_validation} validation examples "
            f"· data sha256 {job.train_hash[:12]} · created {iso(job.created_at)}",
            f"Hyperparameters: {hp}" + (f" · suffix {job.suffix}" if job.suffix else "")]


def chat_label(settings: Settings, job: Job) -> str | None:
    """The Chat page's model-picker label of a finished job's model; None when Chat cannot use it here."""
    from rag_ft.models.catalogue import available_models

    for c in available_models(settings):
        if (job.adapter_dir and c.adapter_dir == job.adapter_dir) or (
                job.result_model and c.model == job.result_model and c.kind == "tuned"):
            return c.label
    return None


def last_step_text(last: Metric) -> str:
    """The caption under the loss chart: the last logged step's losses."""
    return (f"Last step {last.step}: training loss {last.train_loss or float('nan'):.4f}"
            + (f", validation loss {last.valid_loss:.4f}" if last.valid_loss is not None else ""))
