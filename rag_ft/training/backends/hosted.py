"""What the hosted backends (Together AI, Fireworks AI) share: a small JSON-over-HTTP client, the data check
before an upload, and the mapping of a service's status words onto the app's (``jobs.STATUSES``).

Each service's own words are kept in the job's events ("Together status: compressing"), so nothing is lost
by showing the app's fewer words on the badge.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import date
from typing import Any, ClassVar

import httpx

from rag_ft.training.backends.base import Endpoint, FinetuneBackend, LaunchRefused, Request
from rag_ft.training.jobs import Job, JobStore, parse_jsonl
from rag_ft.untrusted import redact


class ServiceError(Exception):
    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, redact(message), code or f"http_{status}"


class Http:
    """JSON requests with a bearer key; no retries (a refusal must reach the user now, not after back-off)."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                   headers={"Authorization": f"Bearer {api_key}"})

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(0, f"could not be reached ({type(exc).__name__}: {exc})", "connection_error") from exc
        try:
            body = resp.json() if resp.content else {}
        except ValueError:
            body = {"message": resp.text[:300]}
        if resp.status_code >= 400:
            err = body.get("error", body) if isinstance(body, dict) else {}
            if not isinstance(err, dict):  # {"error": "text"}
                err = {"message": str(err)}
            # the HTTP status is the code: Together answers OpenAI-style errors, Fireworks Google-style ones
            raise ServiceError(resp.status_code, str(err.get("message") or resp.reason_phrase))
        return body


def explain_service_error(label: str, key_name: str, exc: ServiceError) -> str:
    if exc.status == 401:
        return f"{label} refused the API key: check {key_name}."
    if exc.status == 403:
        return f"{label} does not allow this account to fine-tune this model (plan, billing or model access)."
    if exc.status == 402 or "credit" in exc.message.lower() or "balance" in exc.message.lower():
        return f"{label} reports no credit left: add credit or a payment method on its dashboard, then launch again."
    if exc.status == 429:
        return f"{label} is rate-limiting this key: wait a minute and try again."
    if exc.status == 0:
        return f"{label} could not be reached: check the network (and the base URL setting if one is set)."
    return f"{label} reported an error; its message is shown as is."


class HostedBackend(FinetuneBackend):
    """A service reached over HTTP: ``_upload``, ``_create``, ``_poll`` and ``_cancel`` speak its API."""

    key_name: ClassVar[str]
    serving_url: ClassVar[str]  # the OpenAI-compatible inference base URL of tuned models
    statuses: ClassVar[dict[str, str]]  # the service's status word -> the app's

    def __init__(self, api_key: str, base_url: str, serving_url: str | None = None) -> None:
        self.api_key = api_key
        self.http = Http(base_url, api_key or "not-set")
        self.serving = serving_url or self.serving_url

    def available(self, today: date | None = None) -> str | None:
        return None if self.api_key else f"Set {self.key_name} (secrets or environment) to use {self.label}."

    def can_poll(self) -> bool:
        return self.available() is None

    def start(self, store: JobStore, request: Request) -> Job:
        reason = self.available()
        if reason:
            raise LaunchRefused(reason)
        hp = self.hyperparameters(request)
        job = store.create_job(self.name, request.base_model, request.train, request.validation, hp, request.suffix)
        files: dict[str, bytes] = {}
        for kind, path in (("training", job.train_file), ("validation", job.validation_file)):
            if path:
                with open(path, "rb") as fh:
                    files[kind] = fh.read()
                _, problems = parse_jsonl(files[kind], f"{kind} file")
                if problems:  # checked here too: uploaded bytes reach this point unchecked
                    store.fail(job.id, f"invalid_{kind}_file", " ".join(problems[:3]), f"{kind}_file")
                    return store.get(job.id)
        try:
            self._create(store, job, files, hp)
        except ServiceError as exc:
            self._refused(store, job.id, exc)
        return store.get(job.id)

    def _refused(self, store: JobStore, job_id: str, exc: ServiceError) -> None:
        store.fail(job_id, exc.code, exc.message)

    def explain(self, job: Job) -> str | None:
        if job.error and job.error.code.startswith("http_"):
            status = int(job.error.code.removeprefix("http_") or 0)
            return explain_service_error(self.label, self.key_name, ServiceError(status, job.error.message))
        if job.error and job.error.code == "connection_error":
            return explain_service_error(self.label, self.key_name, ServiceError(0, job.error.message))
        return None

    def move_to(self, store: JobStore, job: Job, remote_status: str, extra: str = "") -> None:
        """Record the service's status (an event when it changes) and the app's word for it."""
        ours = self.statuses.get(remote_status, remote_status)
        if store.has_event(job.id, f"status:{remote_status}"):
            return
        store.add_event(job.id, f"{self.label} status: {remote_status}." + (f" {extra}" if extra else ""),
                        "error" if ours == "failed" else "info", external_id=f"status:{remote_status}")
        if ours != job.status:
            store.set_status(job.id, ours)

    def refresh(self, store: JobStore, job_id: str) -> Job:
        job = store.get(job_id)
        if not job.external_id or (job.is_terminal and (job.result_model or job.status != "succeeded")):
            return job
        try:
            self._poll(store, job)
        except ServiceError as exc:  # reported and retried next time; the job is unchanged
            store.add_event(job_id, f"Could not poll {self.label}: {exc.message}", "warning")
        return store.get(job_id)

    def cancel(self, store: JobStore, job_id: str) -> Job:
        job = store.get(job_id)
        if job.is_terminal:
            return job
        if not job.external_id:
            store.set_status(job_id, "cancelled", f"Cancelled before it reached {self.label}.")
            return store.get(job_id)
        try:
            self._cancel(store, job)
            store.add_event(job_id, f"Cancellation sent to {self.label}.")
        except ServiceError as exc:
            store.add_event(job_id, f"{self.label} did not cancel the job: {exc.message}", "warning")
        return self.refresh(store, job_id)

    def tuned_model(self, job: Job) -> Endpoint | None:
        if job.status != "succeeded" or not job.result_model:
            return None
        return Endpoint(job.result_model, self.serving, self.name)

    @abstractmethod
    def _create(self, store: JobStore, job: Job, files: dict[str, bytes], hp: dict[str, Any]) -> None:
        """Upload ``files`` ({"training": bytes, "validation": bytes}) and create the remote job (external_id)."""

    @abstractmethod
    def _poll(self, store: JobStore, job: Job) -> None: ...

    @abstractmethod
    def _cancel(self, store: JobStore, job: Job) -> None: ...
