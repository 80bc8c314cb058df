"""Together AI fine-tuning (LoRA) over its REST API.

Written from Together's published fine-tuning API (docs.together.ai, the ``together`` SDK's ``FineTune`` type):
``POST /files/upload`` (multipart: file, file_name, purpose=fine-tune) -> ``{"id": "file-..."}``;
``POST /fine-tunes`` {training_file, validation_file, model, n_epochs, learning_rate, batch_size, lora: true,
lora_r, lora_alpha, suffix, n_evals} -> a FineTune object (``id`` "ft-...", ``status``, ``output_name``);
``GET /fine-tunes/{id}``; ``GET /fine-tunes/{id}/events`` -> ``{"data": [...]}`` oldest first;
``POST /fine-tunes/{id}/cancel``. Statuses: pending, queued, running, compressing, uploading, completed, error,
cancel_requested, cancelled. A completed LoRA job's ``output_name`` is the model id sent to the
OpenAI-compatible ``https://api.together.xyz/v1/chat/completions`` (serverless LoRA for the models listed
here; others need a dedicated endpoint, which this app does not create). Field names not checked against a live
account are the SDK's; tests run against ``tests/fake_together.py``, written from the same reference.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, ClassVar

from rag_ft.settings import Settings
from rag_ft.training.backends.base import Parameter
from rag_ft.training.backends.hosted import HostedBackend
from rag_ft.training.jobs import Job, JobStore, Metric

BASE_URL = "https://api.together.xyz/v1"
BASE_MODELS = ("meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", "Qwen/Qwen2.5-7B-Instruct",
               "meta-llama/Llama-3.2-3B-Instruct")


def _timestamp(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


class TogetherBackend(HostedBackend):
    name = "together"
    label = "Together AI"
    note = ("LoRA on Together AI's GPUs, billed per training token; the tuned model answers through Together's "
            "OpenAI-compatible endpoint with the same key.")
    key_name = "TOGETHER_API_KEY"
    serving_url = BASE_URL
    max_suffix = 40
    statuses: ClassVar[dict[str, str]] = {
        "pending": "queued", "queued": "queued", "running": "running", "compressing": "running",
        "uploading": "running", "cancel_requested": "running", "completed": "succeeded", "error": "failed",
        "user_error": "failed", "cancelled": "cancelled"}

    @classmethod
    def from_settings(cls, settings: Settings) -> TogetherBackend:
        base = settings.together_base_url or BASE_URL
        # a test or proxy URL serves inference too; the public API is the default for both
        return cls(settings.together_api_key, base, base)

    def base_models(self) -> tuple[str, ...]:
        return BASE_MODELS

    def available_parameters(self) -> list[Parameter]:
        return [
            Parameter("n_epochs", "int", 3, "Epochs", "Passes over the training data.", 1, 20, key="epochs"),
            Parameter("batch_size", "int", 8, "Batch size", "Examples per step (Together's minimum is 8).", 8, 96,
                      key="batch"),
            Parameter("learning_rate", "float", 1e-5, "Learning rate", "Peak learning rate.", 1e-7, 1e-2,
                      key="lr"),
            Parameter("lora_r", "choice", 8, "LoRA rank", "Rank of the adapter's matrices.",
                      choices=(4, 8, 16, 32, 64), key="rank"),
            Parameter("lora_alpha", "int", 16, "LoRA alpha", "Scale of the adapter (often 2 x rank).", 1, 128,
                      key="alpha"),
            Parameter("n_evals", "int", 0, "Validation runs", "How many times the validation file is scored "
                      "during training (needs a validation file).", 0, 100, key="n_evals", optional=True),
        ]

    # ---- the API ----
    def _upload(self, store: JobStore, job: Job, kind: str, data: bytes) -> str:
        name = f"{job.id}-{kind}.jsonl"
        body = self.http.call("POST", "/files/upload", data={"purpose": "fine-tune", "file_name": name},
                              files={"file": (name, data, "application/jsonl")})
        store.add_event(job.id, f"Uploaded the {kind} file as {body['id']} ({len(data)} bytes, "
                        f"sha256 {hashlib.sha256(data).hexdigest()[:12]}).")
        return str(body["id"])

    def _create(self, store: JobStore, job: Job, files: dict[str, bytes], hp: dict[str, Any]) -> None:
        payload: dict[str, Any] = {"model": job.base_model, "lora": True,
                                   "training_file": self._upload(store, job, "training", files["training"]),
                                   "n_epochs": hp["n_epochs"], "batch_size": hp["batch_size"],
                                   "learning_rate": hp["learning_rate"], "lora_r": hp["lora_r"],
                                   "lora_alpha": hp["lora_alpha"]}
        if "validation" in files:
            payload["validation_file"] = self._upload(store, job, "validation", files["validation"])
            if hp.get("n_evals"):
                payload["n_evals"] = hp["n_evals"]
        if job.suffix:
            payload["suffix"] = job.suffix
        remote = self.http.call("POST", "/fine-tunes", json=payload)
        store.update(job.id, external_id=remote["id"])
        store.add_event(job.id, f"Together job {remote['id']} created.")
        self._apply(store, job.id, remote)

    def _apply(self, store: JobStore, job_id: str, remote: dict[str, Any]) -> None:
        fields: dict[str, Any] = {}
        if remote.get("total_steps"):
            fields["total_steps"] = int(remote["total_steps"])
        if remote.get("steps_completed") is not None:
            fields["step"] = int(remote["steps_completed"])
        if remote.get("token_count"):
            fields["trained_tokens"] = int(remote["token_count"])
        store.update(job_id, **fields)
        status = str(remote.get("status") or "")
        job = store.get(job_id)
        if status in ("error", "user_error") and not job.error:
            store.fail(job_id, status, str(remote.get("error") or remote.get("message")
                                           or "Together reported an error; see the events."))
        self.move_to(store, store.get(job_id), status)
        if status == "completed" and remote.get("output_name"):
            output = str(remote["output_name"])
            store.register_model(job_id, output, model_id=output)

    def _poll(self, store: JobStore, job: Job) -> None:
        remote = self.http.call("GET", f"/fine-tunes/{job.external_id}")
        self._events(store, job)
        self._apply(store, job.id, remote)

    def _events(self, store: JobStore, job: Job) -> None:
        """Together returns every event each time; a hash of the event (or its own hash field) dedupes."""
        body = self.http.call("GET", f"/fine-tunes/{job.external_id}/events")
        for ev in body.get("data", []):
            key = str(ev.get("hash") or hashlib.sha256(repr(sorted(ev.items())).encode()).hexdigest()[:16])
            if store.has_event(job.id, key):
                continue
            level = {"error": "error", "warning": "warning"}.get(str(ev.get("level") or "").lower(), "info")
            store.add_event(job.id, str(ev.get("message") or ev.get("type") or ""), level,
                            _timestamp(ev.get("created_at")), key)
            if ev.get("type") in ("CHECKPOINT_SAVE", "checkpoint_save") and ev.get("checkpoint_path"):
                store.add_checkpoint(job.id, int(ev.get("step") or 0), str(ev["checkpoint_path"]))
            if ev.get("type") in ("TRAINING_PROGRESS", "training_progress", "metrics") and ev.get("step"):
                store.add_metric(job.id, Metric(int(ev["step"]), ev.get("epoch"), ev.get("train_loss"), None,
                                                ev.get("valid_loss")))

    def _cancel(self, store: JobStore, job: Job) -> None:
        self.http.call("POST", f"/fine-tunes/{job.external_id}/cancel")
