"""Run configurations (the columns of a comparison) and run options, with their checks and defaults."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_CONFIGS = 4
DEFAULT_STYLE = r"\[Source: .+\]\s*$"


@dataclass
class RunConfig:
    """One column of the comparison: a model from the picker, with or without retrieval."""

    label: str
    model: str  # a ModelChoice label from rag_ft.models.catalogue.available_models
    rag: bool = False
    k: int = 4
    hybrid: bool = True

    def describe(self) -> str:
        rag = f"RAG k={self.k}{', hybrid' if self.hybrid else ''}" if self.rag else "no retrieval"
        return f"{self.model} · {rag}"


@dataclass
class RunOptions:
    collection: str = "default"
    style_pattern: str = DEFAULT_STYLE  # the user's format check (regex, re.search); "" = none
    max_tokens: int = 128
    threshold: float | None = None  # None: the settings' relevance threshold
    judge: bool = False  # ask an OpenAI model for groundedness/relevance (a judgement, not a measurement)
    limit: int | None = None  # only the first N questions


def check_configs(configs: Sequence[RunConfig]) -> list[str]:
    out = []
    if not configs:
        out.append("Choose at least one configuration.")
    if len(configs) > MAX_CONFIGS:
        out.append(f"At most {MAX_CONFIGS} configurations can be compared at once (got {len(configs)}).")
    labels = [c.label for c in configs]
    if len(set(labels)) != len(labels):
        out.append("Each configuration needs its own name.")
    for c in configs:
        if c.rag and not 1 <= c.k <= 20:
            out.append(f"{c.label}: k must be between 1 and 20 (got {c.k}).")
        if not c.model:
            out.append(f"{c.label}: choose a model.")
    return out


def default_configs(choices: Sequence[Any], k: int = 4, hybrid: bool = True) -> list[RunConfig]:
    """At most MAX_CONFIGS configurations that show what RAG and fine-tuning each bring, always including the one
    Chat answers with by default: its first model, with RAG on.

    ``choices`` are rag_ft.models.catalogue.ModelChoice items (label, kind) in ``available_models`` order, whose
    first item is Chat's default (with the local provider: the base model + grounding adapter when present).
    Base, Base + RAG, then Tuned, Tuned + RAG for the newest tuned model (else Grounded, Grounded + RAG for the
    grounding adapter), then "Chat default" when Chat's model is none of those. Over the limit, Base alone goes:
    on questions about the documents it is the least informative of the five.
    """
    base = next((c for c in choices if c.kind == "base"), None) or (choices[0] if choices else None)
    if base is None:
        return []
    out = [RunConfig("Base", base.label, False, k, hybrid), RunConfig("Base + RAG", base.label, True, k, hybrid)]
    tuned = next((c for c in reversed(choices) if c.kind == "tuned"), None)
    second = tuned or next((c for c in choices if c.kind == "grounding"), None)
    if second is not None:
        name = "Tuned" if tuned else "Grounded"
        out += [RunConfig(name, second.label, False, k, hybrid), RunConfig(f"{name} + RAG", second.label, True, k, hybrid)]
    if choices[0].label not in {c.model for c in out}:
        out.append(RunConfig("Chat default", choices[0].label, True, k, hybrid))
    return out[-MAX_CONFIGS:]


def chat_default(configs: Sequence[RunConfig], choices: Sequence[Any]) -> RunConfig | None:
    """The configuration that answers as Chat does by default (its first model, RAG on), if one does."""
    return next((c for c in configs if choices and c.model == choices[0].label and c.rag), None)


def slot_defaults(defaults: Sequence[RunConfig], models: Sequence[str]) -> list[tuple[bool, RunConfig]]:
    """What each of the MAX_CONFIGS rows of the configuration form starts with: (ticked, configuration).

    Rows past the defaults start unticked with the first model, so a user can add a configuration.
    """
    first = models[0] if models else ""
    return [(True, defaults[i]) if i < len(defaults) else (False, RunConfig(f"Config {i + 1}", first))
            for i in range(MAX_CONFIGS)]


def config_from_form(index: int, on: bool, name: str, model: str, rag: bool, k: int, hybrid: bool) -> RunConfig | None:
    """The configuration one form row describes; None when the row is unticked or has no model."""
    if not on or not model:
        return None
    return RunConfig(name.strip() or f"Config {index + 1}", model, bool(rag), int(k), bool(hybrid))


DEFAULT_LIMIT = 10  # a first run answers this many questions (minutes, not the better part of an hour)


def default_limit(n_questions: int) -> int:
    """The "Questions (0 = all)" field's starting value: DEFAULT_LIMIT, or every question of a smaller set."""
    return max(0, min(DEFAULT_LIMIT, n_questions))
