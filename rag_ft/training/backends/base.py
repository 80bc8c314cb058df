"""One fine-tuning backend interface: each backend describes its hyperparameters, checks a request against that
description, starts, refreshes and cancels jobs, and names the tuned model and the endpoint that serves it.

Modelled on Kiln's ``BaseFinetuneAdapter`` (``available_parameters()``, ``create_and_start``, ``status``): the
Fine-tuning page builds its form from ``available_parameters()`` and never branches on a backend's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from rag_ft.settings import Settings
from rag_ft.training.jobs import TERMINAL, Job, JobStore

PARAMETER_TYPES = ("int", "float", "bool", "choice", "auto_float")


class LaunchRefused(RuntimeError):
    """The job cannot start here; the message says why."""


@dataclass(frozen=True)
class Parameter:
    """One hyperparameter as a form shows it. ``auto_float`` is a number or the word "auto" (the service picks).

    ``key`` names the page's widget (``ft_<key>``), so the same idea (epochs, batch size) keeps one widget
    across backends.
    """

    name: str
    type: str  # one of PARAMETER_TYPES
    default: Any
    label: str
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    key: str = ""
    optional: bool = False  # 0 / "auto" means "not sent": the service's default

    @property
    def widget_key(self) -> str:
        return f"ft_{self.key or self.name}"

    def parse(self, value: Any) -> Any:
        """The value typed into the form, as the backend sends it. Raises ValueError with the sentence to show."""
        if self.type == "bool":
            return bool(value)
        if self.type == "choice":
            if value not in self.choices:
                raise ValueError(f"{self.label} must be one of {', '.join(map(str, self.choices))} (got {value!r}).")
            return value
        if self.type == "auto_float" and str(value).strip() in ("", "auto"):
            return "auto"
        try:
            number: int | float = int(value) if self.type == "int" else float(value)
        except (TypeError, ValueError):
            word = "a whole number" if self.type == "int" else "a number"
            extra = " or 'auto'" if self.type == "auto_float" else ""
            raise ValueError(f"{self.label} must be {word}{extra} (got {value!r}).") from None
        if self.type == "int" and isinstance(value, float) and value != int(value):
            raise ValueError(f"{self.label} must be a whole number (got {value!r}).")
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise ValueError(f"{self.label} must be between {self.min:g} and {self.max:g} (got {number:g}).")
        return number


@dataclass(frozen=True)
class Request:
    """What a launch asks for: the data (records, or raw JSONL bytes as uploaded) and the typed parameters."""

    base_model: str
    train: list[dict[str, Any]] | bytes
    validation: list[dict[str, Any]] | bytes | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str = ""


@dataclass(frozen=True)
class Endpoint:
    """Where a tuned model answers: the model id to send and the OpenAI-compatible base URL (None: local)."""

    model: str
    base_url: str | None = None
    provider: str = "local"


class FinetuneBackend(ABC):
    name: ClassVar[str]
    label: ClassVar[str]
    note: ClassVar[str] = ""  # one caption line under the backend picker (cost, where it runs, end dates)
    max_suffix: ClassVar[int] = 40

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> FinetuneBackend: ...

    @abstractmethod
    def base_models(self) -> tuple[str, ...]: ...

    @abstractmethod
    def available_parameters(self) -> list[Parameter]: ...

    def available(self, today: date | None = None) -> str | None:
        """Why no job can start now (no key, a service's end date), or None when one can."""
        return self.retired(today)

    def retired(self, today: date | None = None) -> str | None:
        """Why this backend is no longer offered for new jobs (its jobs and models stay usable), or None."""
        return None

    def validate(self, request: Request) -> list[str]:
        """Problems with a request, in the words to show (empty: it can start)."""
        problems = []
        if request.base_model not in self.base_models():
            problems.append(f"{self.label} cannot fine-tune {request.base_model!r}; pick one of "
                            f"{', '.join(self.base_models())}.")
        if len(request.suffix) > self.max_suffix:
            problems.append(f"The suffix is longer than {self.max_suffix} characters.")
        known = {p.name: p for p in self.available_parameters()}
        for name, value in request.hyperparameters.items():
            if name not in known:
                problems.append(f"{self.label} has no parameter {name!r}.")
                continue
            try:
                known[name].parse(value)
            except ValueError as exc:
                problems.append(str(exc))
        if not request.train:
            problems.append("There are no training examples.")
        return problems

    def hyperparameters(self, request: Request) -> dict[str, Any]:
        """Every described parameter, parsed, with the defaults filled in (what the job records)."""
        out = {}
        for p in self.available_parameters():
            value = p.parse(request.hyperparameters.get(p.name, p.default))
            if not (p.optional and value in (0, None)):  # 0 = "not set": the service's own default
                out[p.name] = value
        return out

    @abstractmethod
    def start(self, store: JobStore, request: Request) -> Job:
        """Create the job and start it. Raises LaunchRefused when it cannot start at all (nothing is recorded);
        a service's refusal after the job was recorded ends as a failed job with the reason."""

    @abstractmethod
    def refresh(self, store: JobStore, job_id: str) -> Job:
        """Bring status, events, metrics and checkpoints up to date (a failed poll is an event, not an error)."""

    @abstractmethod
    def cancel(self, store: JobStore, job_id: str) -> Job: ...

    def tuned_model(self, job: Job) -> Endpoint | None:
        """The model a succeeded job produced and where it answers (None before that)."""
        return None

    def explain(self, job: Job) -> str | None:
        """Plain words next to a job's error or unusual status (None: nothing to add)."""
        return None

    def can_poll(self) -> bool:
        """Whether this backend can reach its service now (its key is set): jobs wait for it otherwise."""
        return True

    def needs_refresh(self, job: Job) -> bool:
        return job.backend == self.name and (job.status not in TERMINAL
                                             or (job.status == "succeeded" and not job.result_model))

    def refresh_all(self, store: JobStore) -> None:
        """Poll every job of this backend that is not settled (the page's live view)."""
        for job in store.list():
            if self.needs_refresh(job):
                self.refresh(store, job.id)

    def start_checked(self, store: JobStore, request: Request, today: date | None = None) -> Job:
        """``available`` and ``validate`` first: a refused request records no job."""
        reason = self.available(today)
        if reason:
            raise LaunchRefused(reason)
        problems = self.validate(request)
        if problems:
            raise LaunchRefused(" ".join(problems))
        return self.start(store, request)
