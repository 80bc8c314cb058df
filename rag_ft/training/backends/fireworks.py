"""Fireworks AI supervised fine-tuning (LoRA) over its REST API, and the deployment step before a model serves.

Written from Fireworks' published API reference (docs.fireworks.ai/api-reference), resources under
``/v1/accounts/{account}``: ``POST datasets`` {datasetId, dataset: {userUploaded: {}, exampleCount}}, then
``POST datasets/{id}:upload`` (multipart ``file``); ``POST supervisedFineTuningJobs`` {dataset, evaluationDataset,
baseModel, outputModel, epochs, learningRate, loraRank, maxContextLength, displayName} -> a job whose ``name`` is
its resource name and whose ``state`` is JOB_STATE_CREATING / VALIDATING / PENDING / RUNNING / WRITING_RESULTS /
COMPLETED / FAILED / CANCELLED / EXPIRED (errors in ``status.message``); ``GET`` that name; ``DELETE`` it to stop
it (the reference has no separate cancel verb for SFT jobs). A completed job's ``outputModel`` is a LoRA addon
that answers only once deployed: ``POST deployedModels`` {model, serverless: true} until its ``state`` is DEPLOYED,
then through the OpenAI-compatible ``https://api.fireworks.ai/inference/v1`` with the model's resource name.
Fields not checked against a live account follow the reference; tests run against ``tests/fake_fireworks.py``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, ClassVar

from rag_ft.settings import Settings
from rag_ft.training.backends.base import Parameter
from rag_ft.training.backends.hosted import HostedBackend
from rag_ft.training.jobs import Job, JobStore

BASE_URL = "https://api.fireworks.ai"
BASE_MODELS = ("accounts/fireworks/models/llama-v3p1-8b-instruct", "accounts/fireworks/models/qwen2p5-7b-instruct",
               "accounts/fireworks/models/llama-v3p2-3b-instruct")
DEPLOYING = "deploying"  # our word for "trained, being deployed": shown in events, the badge says running


def resource_id(text: str, limit: int = 63) -> str:
    """Fireworks ids: lowercase letters, digits and hyphens, starting with a letter."""
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return ("m-" + slug if not slug[:1].isalpha() else slug)[:limit].rstrip("-")


class FireworksBackend(HostedBackend):
    name = "fireworks"
    label = "Fireworks AI"
    note = ("LoRA on Fireworks AI, billed per training token (small models may tune free); the tuned model is "
            "deployed as a serverless add-on, then answers through Fireworks' OpenAI-compatible endpoint.")
    key_name = "FIREWORKS_API_KEY"
    serving_url = BASE_URL + "/inference/v1"
    statuses: ClassVar[dict[str, str]] = {
        "JOB_STATE_CREATING": "validating_files", "JOB_STATE_VALIDATING": "validating_files",
        "JOB_STATE_PENDING": "queued", "JOB_STATE_RUNNING": "running", "JOB_STATE_WRITING_RESULTS": "running",
        "JOB_STATE_COMPLETED": "running", DEPLOYING: "running", "DEPLOYED": "succeeded",
        "JOB_STATE_FAILED": "failed", "JOB_STATE_EXPIRED": "failed", "JOB_STATE_CANCELLED": "cancelled",
        "JOB_STATE_DELETING": "cancelled"}

    def __init__(self, api_key: str, account: str, base_url: str = BASE_URL, serving_url: str | None = None) -> None:
        super().__init__(api_key, base_url, serving_url)
        self.account = account

    @classmethod
    def from_settings(cls, settings: Settings) -> FireworksBackend:
        base = (settings.fireworks_base_url or BASE_URL).rstrip("/")
        return cls(settings.fireworks_api_key, settings.fireworks_account_id, base, base + "/inference/v1")

    def available(self, today: date | None = None) -> str | None:
        if not self.api_key or not self.account:
            return "Set FIREWORKS_API_KEY and FIREWORKS_ACCOUNT_ID (secrets or environment) to use Fireworks AI."
        return None

    def base_models(self) -> tuple[str, ...]:
        return BASE_MODELS

    def available_parameters(self) -> list[Parameter]:
        return [
            Parameter("epochs", "int", 1, "Epochs", "Passes over the training data.", 1, 10, key="epochs"),
            Parameter("learning_rate", "float", 1e-4, "Learning rate", "Peak learning rate.", 1e-6, 1e-2, key="lr"),
            Parameter("lora_rank", "choice", 8, "LoRA rank", "Rank of the adapter's matrices.",
                      choices=(4, 8, 16, 32, 64), key="rank"),
            Parameter("max_context_length", "int", 8192, "Context length", "Longest example in tokens "
                      "(longer ones are cut).", 512, 131072, key="max_context"),
        ]

    def _path(self, rest: str) -> str:
        return f"/v1/accounts/{self.account}/{rest}"

    # ---- the API ----
    def _dataset(self, store: JobStore, job: Job, kind: str, data: bytes) -> str:
        dataset_id = resource_id(f"{job.id}-{kind}")
        n = sum(1 for line in data.splitlines() if line.strip())
        body = self.http.call("POST", self._path("datasets"),
                              json={"datasetId": dataset_id, "dataset": {"userUploaded": {}, "exampleCount": str(n)}})
        self.http.call("POST", self._path(f"datasets/{dataset_id}:upload"),
                       files={"file": (f"{dataset_id}.jsonl", data, "application/jsonl")})
        store.add_event(job.id, f"Uploaded the {kind} file as dataset {body.get('name', dataset_id)} ({n} examples).")
        return str(body.get("name") or self._path(f"datasets/{dataset_id}").removeprefix("/v1/"))

    def _create(self, store: JobStore, job: Job, files: dict[str, bytes], hp: dict[str, Any]) -> None:
        output = f"accounts/{self.account}/models/{resource_id((job.suffix + '-' if job.suffix else '') + job.id)}"
        payload: dict[str, Any] = {
            "displayName": f"{job.suffix or 'rag-ft'} {job.id}", "baseModel": job.base_model,
            "dataset": self._dataset(store, job, "training", files["training"]), "outputModel": output,
            "epochs": hp["epochs"], "learningRate": hp["learning_rate"], "loraRank": hp["lora_rank"],
            "maxContextLength": hp["max_context_length"]}
        if "validation" in files:
            payload["evaluationDataset"] = self._dataset(store, job, "validation", files["validation"])
        remote = self.http.call("POST", self._path("supervisedFineTuningJobs"), json=payload)
        store.update(job.id, external_id=remote["name"])
        store.add_event(job.id, f"Fireworks job {remote['name']} created; the model will be {output}.")
        self._apply(store, job.id, remote)

    def _apply(self, store: JobStore, job_id: str, remote: dict[str, Any]) -> None:
        state = str(remote.get("state") or "")
        progress = remote.get("jobProgress") or {}
        if progress.get("percent") is not None:
            store.update(job_id, step=int(progress["percent"]), total_steps=100)
        message = str((remote.get("status") or {}).get("message") or "")
        if self.statuses.get(state) == "failed" and not store.get(job_id).error:
            store.fail(job_id, state.lower(), message or "Fireworks reported the job failed.")
        self.move_to(store, store.get(job_id), state)

    def _poll(self, store: JobStore, job: Job) -> None:
        remote = self.http.call("GET", f"/v1/{job.external_id}")
        self._apply(store, job.id, remote)
        if remote.get("state") == "JOB_STATE_COMPLETED" and remote.get("outputModel"):
            self._deploy(store, store.get(job.id), str(remote["outputModel"]))

    def _deploy(self, store: JobStore, job: Job, model: str) -> None:
        """Find the model's deployment (stateless: listed by model), create it once, and wait for DEPLOYED."""
        listed = self.http.call("GET", self._path("deployedModels"), params={"filter": f'model="{model}"'})
        found = [d for d in listed.get("deployedModels", []) if d.get("model") == model]
        if not found:
            created = self.http.call("POST", self._path("deployedModels"),
                                     json={"model": model, "serverless": True, "displayName": job.id})
            found = [created]
            self.move_to(store, job, DEPLOYING, f"Deploying {model} as a serverless LoRA add-on.")
        state = str(found[0].get("state") or "")
        if state == "DEPLOYED":
            store.register_model(job.id, model, model_id=model)
            self.move_to(store, store.get(job.id), "DEPLOYED", f"{model} answers at {self.serving}.")
        elif state in ("FAILED", "DEPLOYMENT_FAILED"):
            store.fail(job.id, "deployment_failed", f"Fireworks trained {model} but could not deploy it "
                       f"({found[0].get('status', {}).get('message') or state}); deploy it from the dashboard.")

    def _cancel(self, store: JobStore, job: Job) -> None:
        self.http.call("DELETE", f"/v1/{job.external_id}")
        store.set_status(job.id, "cancelled", "Cancelled: the Fireworks job was deleted, which stops it.")
