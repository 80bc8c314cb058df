"""One typed settings object, read from the environment and (when the app passes them) Streamlit secrets.

Precedence: secrets > environment > defaults. The engine never imports Streamlit: the app hands
``st.secrets`` in as a plain mapping.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag_ft.models.endpoints import Endpoint

# the repository root: sample_docs/, models/ (the grounding adapter) live there
ROOT = Path(__file__).resolve().parent.parent

PROVIDERS = ("auto", "local", "openai")

LOCAL_CHAT_MODEL = "SmolLM2-135M-Instruct"
LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
OPENAI_CHAT_MODEL = "gpt-4.1-mini"
OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"

# setting name -> the environment / secrets key that sets it
KEYS = {
    "data_dir": "RAG_FT_DATA_DIR",
    "provider": "RAG_FT_PROVIDER",
    "chat_model": "RAG_FT_CHAT_MODEL",
    "embedding_model": "RAG_FT_EMBEDDING_MODEL",
    "openai_api_key": "OPENAI_API_KEY",
    "openai_base_url": "OPENAI_BASE_URL",
    "together_api_key": "TOGETHER_API_KEY",
    "together_base_url": "TOGETHER_BASE_URL",
    "fireworks_api_key": "FIREWORKS_API_KEY",
    "fireworks_account_id": "FIREWORKS_ACCOUNT_ID",
    "fireworks_base_url": "FIREWORKS_BASE_URL",
    "chroma_host": "CHROMA_HOST",
    "chroma_port": "CHROMA_PORT",
    "retrieval_k": "RAG_FT_K",
    "relevance_threshold": "RAG_FT_RELEVANCE_THRESHOLD",
    "hybrid": "RAG_FT_HYBRID",
    "parse_memory_mb": "RAG_FT_PARSE_MEMORY_MB",
    "parse_timeout_s": "RAG_FT_PARSE_TIMEOUT_S",
    "max_pdf_pages": "RAG_FT_MAX_PDF_PAGES",
    "max_ocr_pages": "RAG_FT_MAX_OCR_PAGES",
    "max_upload_mb": "RAG_FT_MAX_UPLOAD_MB",
    "max_text_chars": "RAG_FT_MAX_TEXT_CHARS",
}


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".data")
    provider: str = "auto"
    chat_model: str = ""  # empty: the active provider's default
    embedding_model: str = ""
    openai_api_key: str = field(default="", repr=False)  # never printed
    openai_base_url: str = ""
    # hosted fine-tuning (rag_ft.training.backends): keys never printed; base URLs overridable for tests
    together_api_key: str = field(default="", repr=False)
    together_base_url: str = ""  # empty: https://api.together.xyz/v1
    fireworks_api_key: str = field(default="", repr=False)
    fireworks_account_id: str = ""
    fireworks_base_url: str = ""  # empty: https://api.fireworks.ai
    chroma_host: str = ""  # empty: embedded Chroma in data_dir
    chroma_port: int = 8000
    retrieval_k: int = 4
    relevance_threshold: float = 0.25
    hybrid: bool = True
    # Reading one file (rag_ft.ingest.sandbox): a child process may use this much memory on top of the
    # parser's own footprint, for at most this long; hostile files (decompression bombs) stop there.
    parse_memory_mb: int = 2048
    parse_timeout_s: int = 300
    max_pdf_pages: int = 500  # pages after this are skipped, with a warning
    max_ocr_pages: int = 50  # tesseract costs seconds a page: at most this many pages per file
    max_upload_mb: int = 50  # same as server.maxUploadSize in .streamlit/config.toml
    max_text_chars: int = 2_000_000  # a text file over this is refused; other formats keep their first N
    # Named OpenAI-compatible endpoints ([endpoints.<name>] in secrets, RAG_FT_ENDPOINTS in the environment):
    # see rag_ft.models.endpoints. Entries that cannot be used are left out and said in endpoint_problems.
    endpoints: tuple[Endpoint, ...] = ()
    endpoint_problems: tuple[str, ...] = ()

    @property
    def active_provider(self) -> str:
        if self.provider == "auto":
            return "openai" if self.openai_api_key else "local"
        return self.provider

    @property
    def chat_model_name(self) -> str:
        if self.chat_model:
            return self.chat_model
        return OPENAI_CHAT_MODEL if self.active_provider == "openai" else LOCAL_CHAT_MODEL

    @property
    def embedding_model_name(self) -> str:
        if self.embedding_model:
            return self.embedding_model
        return OPENAI_EMBEDDING_MODEL if self.active_provider == "openai" else LOCAL_EMBEDDING_MODEL

    @property
    def has_api_key(self) -> bool:
        return bool(self.openai_api_key)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "studio.sqlite3"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    def problems(self) -> list[str]:
        """Configuration problems in plain words, each with its fix (empty when all is well)."""
        out = []
        if self.provider not in PROVIDERS:
            out.append(
                f"Unknown provider {self.provider!r}: set RAG_FT_PROVIDER to one of {', '.join(PROVIDERS)}."
            )
        if self.provider == "openai" and not self.openai_api_key and not self.openai_base_url:
            out.append(
                "Provider 'openai' needs OPENAI_API_KEY (in .streamlit/secrets.toml or the environment), "
                "or OPENAI_BASE_URL pointing at an OpenAI-compatible server."
            )
        if self.openai_base_url and not self.openai_base_url.startswith(("http://", "https://")):
            out.append(f"OPENAI_BASE_URL must start with http:// or https:// (got {self.openai_base_url!r}).")
        for name, least in (("parse_memory_mb", 256), ("parse_timeout_s", 5), ("max_pdf_pages", 1),
                            ("max_ocr_pages", 0), ("max_upload_mb", 1), ("max_text_chars", 1000)):
            if getattr(self, name) < least:
                out.append(f"{KEYS[name]} must be at least {least} (got {getattr(self, name)}).")
        return out

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _convert(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if isinstance(raw, str):
        raw = raw.strip()
    try:
        if kind == "Path":
            return Path(str(raw)).expanduser()
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
    except ValueError as exc:
        raise SettingsError(f"{KEYS[name]} must be a number (got {raw!r}).") from exc
    return str(raw)


def load_settings(
    env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Build settings from ``secrets`` (e.g. ``st.secrets``), then ``env`` (default ``os.environ``)."""
    env = os.environ if env is None else env
    secrets = secrets or {}
    values: dict[str, Any] = {}
    for name, key in KEYS.items():
        for source in (secrets, env):
            try:
                raw = source.get(key) if hasattr(source, "get") else None
            except FileNotFoundError:  # st.secrets with no secrets file
                raw = None
            if raw not in (None, ""):
                values[name] = _convert(name, raw)
                break
    from rag_ft.models.endpoints import parse_endpoints  # plain Python, no model import

    values["endpoints"], values["endpoint_problems"] = parse_endpoints(secrets, env)
    values.update(overrides)
    settings = Settings(**values)
    from rag_ft.untrusted import register_secret  # every error we store or show masks the configured key

    register_secret(settings.openai_api_key)
    for endpoint in settings.endpoints:
        register_secret(endpoint.key)
    register_secret(settings.together_api_key)
    register_secret(settings.fireworks_api_key)
    return settings
