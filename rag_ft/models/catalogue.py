"""The model picker's catalogue: the provider's default model, the local models and the grounding adapter, every
model of every named endpoint, and tuned models. Chat, Compare and the command line pick from this one list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langchain_core.language_models.chat_models import BaseChatModel

from rag_ft.models.endpoints import IMPLICIT, Endpoint, endpoint_models, find_endpoint, implicit_openai
from rag_ft.models.providers import get_chat_model, local_chat_model
from rag_ft.settings import LOCAL_CHAT_MODEL, Settings

HOSTED = ("together", "fireworks")  # fine-tuning services whose tuned models answer at their own endpoint


@dataclass(frozen=True)
class ModelChoice:
    label: str  # what the picker shows; unique
    model: str  # model name sent to the provider (OpenAI id, or the local base name)
    adapter_dir: str | None = None  # a local LoRA adapter
    kind: str = "base"  # base | grounding | tuned
    # local | openai (any OpenAI-compatible API: timed as a remote model, priced when the table knows the id)
    backend: str = "local"
    endpoint: str | None = None  # the named endpoint (rag_ft.models.endpoints) serving it; None: local

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


def _local(settings: Settings) -> list[ModelChoice]:
    """The grounding adapter and the local model. With OpenAI as the provider, only the local model, and only when
    it is installed (the local provider reports a missing model itself, in the sidebar): the adapter stays out so
    Compare's default "Grounded" runs (rag_ft.evaluation.configs) stay those of the local provider."""
    local = ModelChoice(LOCAL_CHAT_MODEL, LOCAL_CHAT_MODEL, None, "base", "local")
    if settings.active_provider == "openai":
        from rag_ft.models.local_chat import LocalModelMissing, gguf_dir

        try:
            gguf_dir()
        except LocalModelMissing:
            return []
        return [local]
    grounding = _grounding()
    return [*([grounding] if grounding else []), local]


def _endpoints(settings: Settings) -> list[ModelChoice]:
    return [ModelChoice(f"{model} · {endpoint.name}", model, None, "base", "openai", endpoint.name)
            for endpoint in settings.endpoints for model in endpoint_models(endpoint)]


def _tuned(settings: Settings) -> list[ModelChoice]:
    try:
        from rag_ft.training.jobs import list_tuned_models
    except ImportError:
        return []
    openai = any(e.name == IMPLICIT for e in settings.endpoints) or implicit_openai(settings) is not None
    out = []
    for t in list_tuned_models(settings.db_path):
        if t.backend == "local":
            if t.adapter_dir and Path(t.adapter_dir).exists():
                out.append(ModelChoice(f"{t.name} (LoRA)", t.base_model, t.adapter_dir, "tuned", "local"))
        elif t.backend == "openai" and openai and t.model_id:
            out.append(ModelChoice(t.model_id, t.model_id, None, "tuned", "openai", IMPLICIT))
        elif t.model_id and hosted_endpoint(settings, t.backend) is not None:
            # a Together / Fireworks fine-tune answers at that service's OpenAI-compatible endpoint
            out.append(ModelChoice(f"{t.model_id} · {t.backend}", t.model_id, None, "tuned", "openai", t.backend))
    return out


def hosted_endpoint(settings: Settings, backend_name: str) -> Endpoint | None:
    """The OpenAI-compatible endpoint that serves a hosted backend's tuned models, when its key is set."""
    from rag_ft.training.backends import registry

    if backend_name not in HOSTED or backend_name not in registry.BACKENDS:
        return None
    backend = registry.get(backend_name, settings)
    key = getattr(backend, "api_key", "")
    serving = getattr(backend, "serving", "")
    if not key or not serving:
        return None
    return Endpoint(backend_name, serving, key_env=getattr(backend, "key_name", ""), key=key)


def available_models(settings: Settings) -> list[ModelChoice]:
    """Every pickable model, Chat's default first: the provider's model (OpenAI), or the grounding adapter and the
    local model (local); then each endpoint's models ("model · endpoint"), the local ones when OpenAI came first,
    and tuned models."""
    choices: list[ModelChoice] = []
    implicit = implicit_openai(settings)
    if implicit is not None:
        choices.append(ModelChoice(settings.chat_model_name, settings.chat_model_name, None, "base", "openai", IMPLICIT))
    if settings.active_provider == "openai":
        choices += _endpoints(settings) + _local(settings)
    else:
        choices += _local(settings) + _endpoints(settings)
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
    """The LangChain chat model behind a picker choice: local (with its adapter), or its endpoint's server."""
    if choice.backend == "local" or choice.adapter_dir:
        return local_chat_model(choice.model, choice.adapter_dir, max_tokens)
    endpoint = None
    if choice.endpoint:
        endpoint = hosted_endpoint(settings, choice.endpoint) if choice.endpoint in HOSTED \
            else find_endpoint(settings, choice.endpoint)
    return get_chat_model(settings, model=choice.model, max_tokens=max_tokens, endpoint=endpoint)
