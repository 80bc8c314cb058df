"""The fine-tuning backends by name: the page lists them, and a job's ``backend`` column finds its code again."""

from __future__ import annotations

from datetime import date

from rag_ft.settings import Settings
from rag_ft.training.backends.base import Endpoint, FinetuneBackend
from rag_ft.training.backends.fireworks import FireworksBackend
from rag_ft.training.backends.local import LocalBackend
from rag_ft.training.backends.openai import OpenAIBackend
from rag_ft.training.backends.together import TogetherBackend
from rag_ft.training.jobs import Job, JobStore

# the order the page offers them: always-available first, retiring last
BACKENDS: dict[str, type[FinetuneBackend]] = {
    "local": LocalBackend, "together": TogetherBackend, "fireworks": FireworksBackend, "openai": OpenAIBackend}


def get(name: str, settings: Settings) -> FinetuneBackend:
    """The backend called ``name``, configured from ``settings``. KeyError for a name no backend has."""
    return BACKENDS[name].from_settings(settings)


def offered(settings: Settings, today: date | None = None) -> list[FinetuneBackend]:
    """The backends a new job may be started on (a retired one's jobs and models stay usable)."""
    return [b for b in (get(n, settings) for n in BACKENDS) if not b.retired(today)]


def retired(settings: Settings, today: date | None = None) -> list[str]:
    """Why each retired backend is no longer offered (the page shows these sentences)."""
    return [r for r in (get(n, settings).retired(today) for n in BACKENDS) if r]


def for_job(settings: Settings, job: Job) -> FinetuneBackend | None:
    """The backend that runs ``job`` (None for a backend this version does not know)."""
    return get(job.backend, settings) if job.backend in BACKENDS else None


def refresh_all(store: JobStore, settings: Settings) -> None:
    """Poll every unsettled job; a hosted backend without its key is skipped (its jobs wait for the key)."""
    for name in BACKENDS:
        backend = get(name, settings)
        if backend.can_poll():
            backend.refresh_all(store)


def endpoint(settings: Settings, job: Job) -> Endpoint | None:
    """Where a succeeded job's model answers: the model id and its OpenAI-compatible base URL."""
    backend = for_job(settings, job)
    return backend.tuned_model(job) if backend else None
