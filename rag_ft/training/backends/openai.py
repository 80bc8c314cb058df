"""OpenAI fine-tuning backend over the ``openai`` client: upload, create, poll, checkpoints, results, cancel.

OpenAI is winding self-serve fine-tuning down (new organisations blocked since May 2026, no new jobs
for anyone after 2027-01-06), so every refusal is shown with a plain explanation next to OpenAI's own
message; the local backend is the one that always works.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

from rag_ft.settings import Settings
from rag_ft.training.backends.base import Endpoint, FinetuneBackend, LaunchRefused, Parameter, Request
from rag_ft.training.jobs import STATUSES, TERMINAL, Job, JobStore, Metric, parse_jsonl
from rag_ft.untrusted import redact

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
END_DATE = date(2027, 1, 6)  # no organisation can start a new OpenAI fine-tuning job from this day
BASE_MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14")

WIND_DOWN = ("OpenAI refused to fine-tune for this organisation. OpenAI is winding self-serve fine-tuning down: "
             "organisations created since May 2026 cannot start fine-tuning jobs, and no organisation can start "
             "new jobs after 2027-01-06. It can also mean this key's project lacks fine-tuning permission. "
             "The local backend (LoRA on this computer) always works.")
INVALID_FILE = ("OpenAI could not use the file it names: every line must be one JSON object "
                '{"messages": [...]} with system/user/assistant messages and at least one assistant answer. '
                "Fix the line it mentions in the training data and launch again.")
QUOTA = ("Your OpenAI account has no quota or billing left for this: check the plan, credit and billing "
         "limits at platform.openai.com/settings/organization/billing, then launch again.")
AUTH = "OpenAI refused the API key: check OPENAI_API_KEY."
UNREACHABLE = "OpenAI could not be reached: check the network and OPENAI_BASE_URL."


@dataclass(frozen=True)
class Explained:
    code: str
    message: str  # OpenAI's own words
    explanation: str  # ours, plain
    param: str | None = None


def explain_error(code: str | None, message: str = "", status: int | None = None) -> str:
    """Plain words for an OpenAI error code (job error or API error)."""
    c = (code or "").lower()
    m = message.lower()
    if status == 403 or "permission" in c or "denied" in c or "not allowed" in m:
        return WIND_DOWN
    if status == 401 or c == "invalid_api_key":
        return AUTH
    if "quota" in c or "billing" in c or "quota" in m or "billing" in m:
        return QUOTA
    if "file" in c or "file format" in m:
        return INVALID_FILE
    if status == 429:
        return "OpenAI is rate-limiting this key: wait a minute and try again."
    if "model" in c:
        return f"This base model cannot be fine-tuned with this key; pick one of {', '.join(BASE_MODELS)}."
    return "OpenAI reported an error; its message is shown as is."


def explain_status(status: str) -> str | None:
    if status in STATUSES:
        return None
    return (f"OpenAI reports the status '{status}', which this app does not know yet; it is shown as is and the "
            "job keeps being polled. Check the job on platform.openai.com if it stays there.")


def explain_exception(exc: Exception) -> Explained:
    import openai

    if isinstance(exc, openai.APIConnectionError):
        return Explained("connection_error", redact(exc), UNREACHABLE)
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        err = body.get("error", body) if isinstance(body, dict) else {}
        code = (err or {}).get("code") or (err or {}).get("type") or f"http_{exc.status_code}"
        message = redact((err or {}).get("message") or str(exc))  # servers echo the key they refused
        return Explained(str(code), message, explain_error(str(code), message, exc.status_code), (err or {}).get("param"))
    return Explained(type(exc).__name__, redact(exc), "Unexpected error while talking to OpenAI.")


def parse_metrics_csv(content: bytes) -> list[Metric]:
    """The result file's step metrics; OpenAI serves it base64-encoded (plain CSV is accepted too)."""
    text = content.decode("utf-8", "replace").strip()
    if not text.lower().startswith("step"):
        try:
            text = base64.b64decode(text, validate=False).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return []

    def num(v: str | None) -> float | None:
        try:
            return float(v) if v not in (None, "") else None
        except ValueError:
            return None

    out = []
    for row in csv.DictReader(io.StringIO(text)):
        step = num(row.get("step"))
        if step is None:
            continue
        out.append(Metric(int(step), None, num(row.get("train_loss")),
                          num(row.get("train_accuracy") or row.get("train_mean_token_accuracy")),
                          num(row.get("valid_loss")),
                          num(row.get("valid_mean_token_accuracy") or row.get("valid_accuracy"))))
    return out


class OpenAIBackend(FinetuneBackend):
    """OpenAI's fine-tuning API. ``start_job`` / ``sync`` / ``cancel`` are the engine; ``start`` / ``refresh``
    are the common interface over them."""

    name = "openai"
    label = "OpenAI (new jobs until 2027-01-06)"
    note = ("OpenAI is winding self-serve fine-tuning down: organisations created since May 2026 cannot "
            "fine-tune, and no new jobs can start after 2027-01-06. Models tuned there stay usable in Chat.")
    max_suffix = 18  # OpenAI's limit on a fine-tuned model's suffix

    def __init__(self, api_key: str, base_url: str | None = None, client: Any = None) -> None:
        self.ready = bool(api_key or base_url or client)
        if client is None:
            from openai import OpenAI

            # no retries: a 403/429 must reach the user now, not after back-off
            client = OpenAI(api_key=api_key or "not-set", base_url=base_url or None, max_retries=0, timeout=60)
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIBackend:
        return cls(settings.openai_api_key, settings.openai_base_url or None)

    # ---- the common interface (rag_ft.training.backends.base) ----
    def base_models(self) -> tuple[str, ...]:
        return BASE_MODELS

    def available_parameters(self) -> list[Parameter]:
        return [
            Parameter("epochs", "int", 3, "Epochs", "Passes over the training data.", 1, 50),
            Parameter("batch_size", "int", 4, "Batch size", "Examples per step.", 1, 64, key="batch"),
            Parameter("seed", "int", 0, "Seed", "Same seed, same data: a reproducible job.", 0, 2**31 - 1),
            Parameter("learning_rate_multiplier", "auto_float", "auto", "Learning rate multiplier",
                      "'auto' lets OpenAI choose.", 0.01, 10.0, key="lrm"),
        ]

    def retired(self, today: date | None = None) -> str | None:
        if (today or date.today()) >= END_DATE:
            return (f"OpenAI stopped starting new fine-tuning jobs on {END_DATE.isoformat()}: use Together AI or "
                    "Fireworks AI (hosted LoRA), or the local backend. Models already tuned on OpenAI stay "
                    "usable in Chat.")
        return None

    def available(self, today: date | None = None) -> str | None:
        if not self.ready:
            return "Set OPENAI_API_KEY (secrets or environment) to use OpenAI."
        return self.retired(today)

    def start(self, store: JobStore, request: Request, today: date | None = None) -> Job:
        reason = self.retired(today)
        if reason:
            raise LaunchRefused(reason)
        return self.start_job(store, request.train, request.validation, self.hyperparameters(request),
                              request.suffix, request.base_model)

    def refresh(self, store: JobStore, job_id: str) -> Job:
        return self.sync(store, job_id)

    def can_poll(self) -> bool:
        return self.ready

    def tuned_model(self, job: Job) -> Endpoint | None:
        if job.status != "succeeded" or not job.result_model:
            return None
        return Endpoint(job.result_model, None, "openai")  # None: the OpenAI provider's own base URL

    def explain(self, job: Job) -> str | None:
        if job.error:
            return explain_error(job.error.code, job.error.message)
        return explain_status(job.status)

    # ---- launch ----
    def start_job(
        self,
        store: JobStore,
        train: list[dict[str, Any]] | bytes,
        validation: list[dict[str, Any]] | bytes | None = None,
        hyperparameters: dict[str, Any] | None = None,
        suffix: str = "",
        base_model: str = DEFAULT_MODEL,
    ) -> Job:
        """Freeze and check the data, upload it, create the job. Failures end as a failed job with the
        reason (the user sees why), never as an exception."""
        hp = {"epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto", "seed": None,
              **(hyperparameters or {})}
        job = store.create_job("openai", base_model, train, validation, hp, suffix)
        files: dict[str, str] = {}
        for kind, path in (("training_file", job.train_file), ("validation_file", job.validation_file)):
            if not path:
                continue
            with open(path, "rb") as fh:
                data = fh.read()
            _, problems = parse_jsonl(data, kind.replace("_", " "))
            if problems:
                store.fail(job.id, f"invalid_{kind}", " ".join(problems[:3]), kind)
                return store.get(job.id)
            try:
                uploaded = self.client.files.create(file=(f"{job.id}-{kind}.jsonl", data), purpose="fine-tune")
            except Exception as exc:
                return self._refused(store, job.id, exc)
            files[kind] = uploaded.id
            store.add_event(job.id, f"Uploaded the {kind.replace('_', ' ')} as {uploaded.id} ({len(data)} bytes).")
        method_hp = {k: v for k, v in (("n_epochs", hp["epochs"]), ("batch_size", hp["batch_size"]),
                                        ("learning_rate_multiplier", hp["learning_rate_multiplier"]))
                     if v not in (None, "")}
        kwargs: dict[str, Any] = {"model": base_model, "training_file": files["training_file"],
                                  "method": {"type": "supervised", "supervised": {"hyperparameters": method_hp}}}
        if "validation_file" in files:
            kwargs["validation_file"] = files["validation_file"]
        if suffix:
            kwargs["suffix"] = suffix
        if hp.get("seed") is not None:
            kwargs["seed"] = int(hp["seed"])
        try:
            remote = self.client.fine_tuning.jobs.create(**kwargs)
        except Exception as exc:
            return self._refused(store, job.id, exc)
        store.update(job.id, external_id=remote.id)
        store.add_event(job.id, f"OpenAI job {remote.id} created.")
        self._apply(store, job.id, remote)
        return store.get(job.id)

    def _refused(self, store: JobStore, job_id: str, exc: Exception) -> Job:
        e = explain_exception(exc)
        store.fail(job_id, e.code, e.message, e.param)
        return store.get(job_id)

    # ---- poll ----
    def _apply(self, store: JobStore, job_id: str, remote: Any) -> None:
        job = store.get(job_id)
        fields: dict[str, Any] = {}
        if remote.estimated_finish:
            fields["estimated_finish"] = float(remote.estimated_finish)
        if remote.trained_tokens:
            fields["trained_tokens"] = int(remote.trained_tokens)
        err = remote.error
        if err and (getattr(err, "message", None) or getattr(err, "code", None)):
            fields.update(error_code=err.code, error_message=err.message, error_param=err.param)
        store.update(job_id, **fields)
        if remote.status != job.status:
            note = explain_status(remote.status)
            store.set_status(job_id, remote.status, f"Status: {remote.status}." + (f" {note}" if note else ""),
                             "warning" if note else "info")

    def sync(self, store: JobStore, job_id: str) -> Job:
        """Poll the job, its new events (metrics), checkpoints and, once succeeded, the result file."""
        job = store.get(job_id)
        if not job.external_id or job.is_terminal and job.result_model:
            return job
        try:
            remote = self.client.fine_tuning.jobs.retrieve(job.external_id)
            self._apply(store, job_id, remote)
            self._sync_events(store, job)
            self._sync_checkpoints(store, job)
            if remote.status == "succeeded" and remote.fine_tuned_model:
                if remote.result_files:
                    self._read_results(store, job, remote.result_files[0])
                store.register_model(job_id, remote.fine_tuned_model, model_id=remote.fine_tuned_model)
        except Exception as exc:  # a failed poll is reported and retried next time, the job is unchanged
            e = explain_exception(exc)
            store.add_event(job_id, f"Could not poll OpenAI: {e.message} {e.explanation}", "warning")
        return store.get(job_id)

    def _sync_events(self, store: JobStore, job: Job) -> None:
        """Events come newest first; page back (``after``) until one we already have."""
        fresh: list[Any] = []
        after = None
        while True:
            kwargs = {"limit": 50, **({"after": after} if after else {})}
            page = self.client.fine_tuning.jobs.list_events(job.external_id, **kwargs)
            seen = False
            for ev in page.data:
                if store.has_event(job.id, ev.id):
                    seen = True
                    break
                fresh.append(ev)
            if seen or not page.has_more or not page.data:
                break
            after = page.data[-1].id
        for ev in reversed(fresh):  # store oldest first
            store.add_event(job.id, ev.message, ev.level or "info", float(ev.created_at), ev.id)
            data = ev.data if isinstance(ev.data, dict) else {}
            if ev.type == "metrics" and data.get("step") is not None:
                store.add_metric(job.id, Metric(int(data["step"]), None, data.get("train_loss"),
                                                data.get("train_mean_token_accuracy"), data.get("valid_loss"),
                                                data.get("valid_mean_token_accuracy")))
                if data.get("total_steps"):
                    store.update(job.id, step=int(data["step"]), total_steps=int(data["total_steps"]))

    def _sync_checkpoints(self, store: JobStore, job: Job) -> None:
        for ck in self.client.fine_tuning.jobs.checkpoints.list(job.external_id, limit=50).data:
            metrics = ck.metrics.model_dump(exclude_none=True) if ck.metrics else {}
            store.add_checkpoint(job.id, int(ck.step_number), ck.fine_tuned_model_checkpoint, None, metrics)

    def _read_results(self, store: JobStore, job: Job, file_id: str) -> None:
        content = self.client.files.content(file_id).read()
        rows = parse_metrics_csv(content)
        for m in rows:
            store.add_metric(job.id, m)
        store.add_event(job.id, f"Read {len(rows)} step metrics from the result file {file_id}.")

    def cancel(self, store: JobStore, job_id: str) -> Job:
        job = store.get(job_id)
        if job.is_terminal:
            return job
        if not job.external_id:
            store.set_status(job_id, "cancelled", "Cancelled before it reached OpenAI.")
            return store.get(job_id)
        try:
            remote = self.client.fine_tuning.jobs.cancel(job.external_id)
            store.add_event(job_id, "Cancellation sent to OpenAI.")
            self._apply(store, job_id, remote)
        except Exception as exc:
            e = explain_exception(exc)
            store.add_event(job_id, f"OpenAI did not cancel the job: {e.message}", "warning")
        return store.get(job_id)


def sync_all(store: JobStore, backend: OpenAIBackend | None) -> None:
    """Poll every OpenAI job that is not finished (and finished ones whose model is not registered yet)."""
    if backend is None:
        return
    for job in store.list():
        if job.backend == "openai" and job.external_id and (job.status not in TERMINAL or
                                                            (job.status == "succeeded" and not job.result_model)):
            backend.sync(store, job.id)
