"""The model picker's catalogue: the active provider's base models, the grounding adapter, and tuned models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langchain_core.language_models.chat_models import BaseChatModel

from rag_ft.models.providers import get_chat_model
from rag_ft.settings import LOCAL_CHAT_MODEL, Settings


@dataclass(frozen=True)
class ModelChoice:
    label: str  # what the picker shows; unique
    model: str  # model name sent to the provider (OpenAI id, or the local base name)
    adapter_dir: str | None = None  # a local LoRA adapter
    kind: str = "base"  # base | grounding | tuned
    backend: str = "local"  # local | openai

    @property
    def is_tuned(self) -> bool:
        return self.kind in ("tuned", "grounding")


def _grounding() -> ModelChoice | None:
    try:
        from rag_ft.models import grounding
    except ImportError:
        return None
    if not grounding.adapter_available():
        return None
    return ModelChoice(grounding.MODEL_LABEL, LOCAL_CHAT_MODEL, str(grounding.ADAPTER_DIR), "grounding", "local")


def _tuned(settings: Settings) -> list[ModelChoice]:
    try:
        from rag_ft.training.jobs import list_tuned_models
    except ImportError:
        return []
    out = []
    for t in list_tuned_models(settings.db_path):
        if t.backend == "local":
            if t.adapter_dir and Path(t.adapter_dir).exists():
                out.append(ModelChoice(f"{t.name} (LoRA)", t.base_model, t.adapter_dir, "tuned", "local"))
        elif settings.active_provider == "openai" and t.model_id:
            out.append(ModelChoice(t.model_id, t.model_id, None, "tuned", "openai"))
    return out


def available_models(settings: Settings) -> list[ModelChoice]:
    """Default first: with the local provider, base + grounding adapter when it is there."""
    choices: list[ModelChoice] = []
    if settings.active_provider == "openai":
        choices.append(ModelChoice(settings.chat_model_name, settings.chat_model_name, None, "base", "openai"))
    else:
        grounding = _grounding()
        if grounding:
            choices.append(grounding)
        choices.append(ModelChoice(LOCAL_CHAT_MODEL, LOCAL_CHAT_MODEL, None, "base", "local"))
    choices.extend(_tuned(settings))
    seen, unique = set(), []
    for c in choices:
        if c.label not in seen:
            seen.add(c.label)
            unique.append(c)
    return unique


def base_model(settings: Settings) -> ModelChoice:
    """The provider's untuned model (the "base" configuration of the Compare page)."""
    return next(c for c in available_models(settings) if c.kind == "base")


def chat_model_for(settings: Settings, choice: ModelChoice, max_tokens: int = 256) -> BaseChatModel:
    return get_chat_model(settings, model=choice.model, adapter_dir=choice.adapter_dir, max_tokens=max_tokens)
