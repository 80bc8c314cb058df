"""Providers: the chat model and embeddings for the active settings, as LangChain objects.

``local`` (default, offline) uses models shipped inside PyPI packages; ``openai`` uses langchain-openai
and honours ``OPENAI_BASE_URL`` for any OpenAI-compatible server. Nothing loads until first use.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings
from langchain_core.language_models.chat_models import BaseChatModel

from rag_ft.models.endpoints import OPENAI_DEFAULT_BASE, Endpoint
from rag_ft.settings import Settings, SettingsError
from rag_ft.untrusted import redact, short


class ProviderError(RuntimeError):
    """A provider cannot be used as configured; the message says why and what to do."""


@dataclass(frozen=True)
class ProviderStatus:
    ok: bool
    provider: str
    chat_model: str
    embedding_model: str
    message: str  # plain words for the sidebar


def _check_settings(settings: Settings) -> None:
    problems = settings.problems()
    if problems:
        raise SettingsError(" ".join(problems))


def get_embeddings(settings: Settings) -> Embeddings:
    _check_settings(settings)
    if settings.active_provider == "openai":
        from langchain_openai import OpenAIEmbeddings

        return OpenAIEmbeddings(
            model=settings.embedding_model_name,
            api_key=settings.openai_api_key or "not-needed",
            base_url=settings.openai_base_url or None,
            # send plain strings: token arrays need tiktoken files (a download) and many
            # OpenAI-compatible servers reject them; our chunks are far below the input limit
            check_embedding_ctx_length=False,
            max_retries=1,
        )
    from rag_ft.models.local_embeddings import LocalEmbeddings

    return LocalEmbeddings()


def embedding_id(settings: Settings) -> str:
    """Names the vector space a collection was built in: provider and model."""
    return f"{settings.active_provider}:{settings.embedding_model_name}"


def get_chat_model(
    settings: Settings, model: str | None = None, adapter_dir: str | None = None, max_tokens: int = 256,
    endpoint: Endpoint | None = None,
) -> BaseChatModel:
    """The chat model ``model`` (default: the settings' chat model); ``adapter_dir`` = a local LoRA; ``endpoint`` =
    a named OpenAI-compatible endpoint (rag_ft.models.endpoints), its base URL, key and headers."""
    if endpoint is None or endpoint not in settings.endpoints:
        _check_settings(settings)  # a configured endpoint was checked when settings loaded; the implicit one is not
    name = model or settings.chat_model_name
    if endpoint is not None and not adapter_dir:
        return openai_chat_model(name, endpoint.base_url, endpoint.key, max_tokens, dict(endpoint.headers))
    if settings.active_provider == "openai" and not adapter_dir:
        return openai_chat_model(name, settings.openai_base_url, settings.openai_api_key, max_tokens)
    return local_chat_model(name, adapter_dir, max_tokens)


def openai_chat_model(
    model: str, base_url: str, api_key: str, max_tokens: int = 256, headers: dict[str, str] | None = None
) -> BaseChatModel:
    """A streaming ChatOpenAI on any OpenAI-compatible server (token usage reported in the stream)."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=model,
        api_key=api_key or "not-needed",  # Ollama, vLLM, LM Studio want no key, but the client insists on one
        base_url=base_url or None,
        default_headers=headers or None,
        streaming=True,
        temperature=0,
        max_tokens=max_tokens,
        max_retries=1,
        timeout=60,
        stream_usage=True,
    )


def local_chat_model(model: str, adapter_dir: str | None = None, max_tokens: int = 256) -> BaseChatModel:
    """The local model (offline), with the LoRA adapter in ``adapter_dir`` when given."""
    from rag_ft.models.local_chat import LocalChatModel

    return LocalChatModel(model_name=model, adapter_dir=adapter_dir, max_new_tokens=max_tokens)


def check_openai(settings: Settings, timeout: float = 5.0) -> str | None:
    """Ask the server for its model list; None when it answers, else the problem in plain words."""
    base = (settings.openai_base_url or OPENAI_DEFAULT_BASE).rstrip("/")
    request = urllib.request.Request(
        f"{base}/models", headers={"Authorization": f"Bearer {settings.openai_api_key or 'not-needed'}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            json.load(response)
        return None
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return "The OpenAI API key was refused (401): check OPENAI_API_KEY."
        if exc.code == 403:
            return "The key has no access to this server (403): check the key's project and permissions."
        return redact(f"{base} answered HTTP {exc.code} to a model list request.")
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)  # the base URL may carry user:password@: shown masked
        return redact(f"Cannot reach {base} ({reason}): check OPENAI_BASE_URL and the network.")


def provider_status(settings: Settings, probe: bool = True) -> ProviderStatus:
    """What the sidebar shows. ``probe`` makes one cheap request when the provider is OpenAI."""
    problems = settings.problems()
    provider = settings.active_provider if settings.provider in ("auto", "local", "openai") else "?"
    chat, emb = settings.chat_model_name, settings.embedding_model_name
    if problems:
        return ProviderStatus(False, provider, chat, emb, redact(" ".join(problems)))
    if provider == "openai":
        problem = check_openai(settings) if probe else None
        if problem:
            return ProviderStatus(False, provider, chat, emb, problem)
        return ProviderStatus(True, provider, chat, emb, "OpenAI models are in use.")
    from rag_ft.models.local_chat import LocalModelMissing, gguf_dir

    try:
        gguf_dir()
    except LocalModelMissing as exc:
        return ProviderStatus(False, provider, chat, emb, str(exc))
    return ProviderStatus(True, provider, chat, emb, "Local models, offline. Add an OpenAI key to use OpenAI.")


def explain_error(exc: BaseException, doing: str = "answering") -> str:
    """An exception from a model server (chat or embeddings), in plain words, with no secret in it."""
    names = {c.__name__.removeprefix("OpenAI") for c in type(exc).__mro__}  # langchain-openai wraps openai's errors
    text = redact(exc)  # servers echo keys and URL credentials back in their messages
    if "AuthenticationError" in names:
        return "OpenAI refused the API key (401). Check OPENAI_API_KEY in secrets or the environment."
    if "RateLimitError" in names:
        if "quota" in text.lower():
            return "OpenAI says the account is out of quota (429): check billing, then try again."
        return "OpenAI is rate-limiting requests (429): wait a moment and try again."
    if "NotFoundError" in names:
        return f"The server does not know this model, or the key cannot use it (404): {short(text)}"
    if "PermissionDeniedError" in names:
        return f"The key is not allowed to use this model (403): {short(text)}"
    if names & {"APIConnectionError", "APITimeoutError", "ConnectError"}:
        return "Cannot reach the model server: check OPENAI_BASE_URL and the network."
    return f"The model failed while {doing} ({type(exc).__name__}): {short(text)}"
