"""Named OpenAI-compatible endpoints: OpenAI, Ollama, vLLM, LM Studio, a llama.cpp server, Together, Fireworks...

Modelled on simonw/llm's ``extra-openai-models.yaml``: each entry is a base URL, its models, and the *name* of the
secret or environment variable that holds its key (never the key itself). They come from the ``[endpoints.<name>]``
tables of ``.streamlit/secrets.toml`` and from ``RAG_FT_ENDPOINTS`` (the same tables as one JSON object, for the
command line and CI); secrets win over the environment, entry by entry.

A key is looked up (secrets, then environment) each time settings load, which is every page run and every
command, and is held in memory only: it is registered with ``rag_ft.untrusted`` so every message we show masks
it, and nothing here writes it anywhere.

The settings' own ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` stay the implicit endpoint ``openai`` (``implicit_openai``).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rag_ft.untrusted import redact

if TYPE_CHECKING:
    from rag_ft.settings import Settings

OPENAI_DEFAULT_BASE = "https://api.openai.com/v1"
IMPLICIT = "openai"  # the endpoint OPENAI_API_KEY / OPENAI_BASE_URL describe
ENV_KEY = "RAG_FT_ENDPOINTS"
SECRETS_TABLE = "endpoints"
# simonw/llm's names for the same fields, accepted so an entry can be copied over
ALIASES = {"api_base": "base_url", "api_key_name": "key_env", "model_ids": "models"}
FIELDS = ("base_url", "models", "key_env", "headers")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")  # shown in labels "model · name": no spaces or dots-only
KEY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
# ids a server lists that cannot chat; only used when an entry does not name its models
NOT_CHAT = re.compile(r"(?i)embed|whisper|tts|dall-e|moderation|rerank|transcribe|davinci-00|babbage")
MAX_MODELS = 200  # a listing longer than this (OpenRouter lists hundreds) is cut: name the models instead
LISTED_TTL_S, FAILED_TTL_S = 300.0, 60.0


@dataclass(frozen=True)
class Endpoint:
    name: str
    base_url: str
    key_env: str = ""  # the secret / environment variable holding the key; "" = the server needs none
    models: tuple[str, ...] = ()  # empty: whatever the server lists at GET /models
    headers: tuple[tuple[str, str], ...] = ()  # extra HTTP headers sent with every request
    key: str = field(default="", repr=False)  # looked up from key_env when settings load; never printed

    @property
    def key_state(self) -> str:
        """``set``, ``missing`` (key_env names a secret nobody set) or ``none`` (no key needed)."""
        if not self.key_env:
            return "none"
        return "set" if self.key else "missing"

    def request_headers(self) -> dict[str, str]:
        out = dict(self.headers)
        if self.key:
            out["Authorization"] = f"Bearer {self.key}"
        return out


@dataclass(frozen=True)
class Health:
    ok: bool
    models: tuple[str, ...]  # what the server lists (server text: render it inert)
    problem: str  # plain words, redacted; "" when ok
    seconds: float = 0.0


class EndpointError(LookupError):
    """A model choice names an endpoint the settings no longer have."""


def _lookup(source: Mapping[str, Any] | None, key: str) -> Any:
    if not source or not hasattr(source, "get"):
        return None
    try:
        return source.get(key)
    except FileNotFoundError:  # st.secrets with no secrets file
        return None


def _plain(value: Any) -> Any:
    """st.secrets' nested tables are read-only mappings: copy them to plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _entry(name: str, raw: Any, secrets: Mapping[str, Any] | None, env: Mapping[str, str]) -> tuple[Endpoint | None,
                                                                                                   list[str]]:
    """One endpoint from its table, and the problems found in it (an endpoint with a fatal problem is None)."""
    where = f"Endpoint {name!r}"
    if not NAME.match(name):
        return None, [f"{where}: a name is letters, digits, '-', '_' or '.', at most 40 characters."]
    if not isinstance(raw, Mapping):
        return None, [f"{where}: expected a table with base_url (and models, key_env, headers)."]
    entry = {ALIASES.get(k, k): v for k, v in raw.items()}
    problems = []
    for k in entry:
        if k in ("api_key", "key"):
            problems.append(f"{where}: keys do not belong in the endpoint table; put the key in a top-level "
                            f"secret (or environment variable) and name it in key_env. The {k} entry is ignored.")
        elif k not in FIELDS:
            problems.append(f"{where}: unknown field {k!r} ignored (known: {', '.join(FIELDS)}).")
    base = entry.get("base_url")
    if not isinstance(base, str) or not base.strip().startswith(("http://", "https://")):
        return None, [*problems, f"{where}: base_url must start with http:// or https:// "
                                 f"(e.g. http://localhost:11434/v1)."]
    models = entry.get("models") or []
    if isinstance(models, str):
        models = models.split(",")
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        return None, [*problems, f"{where}: models must be a list of model names."]
    key_env = entry.get("key_env") or ""
    if not isinstance(key_env, str) or (key_env and not KEY_NAME.match(key_env)):
        return None, [*problems, f"{where}: key_env is the name of a secret or environment variable "
                                 f"(e.g. TOGETHER_API_KEY), not the key."]
    headers = entry.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str | int | float) for v in headers.values()):
        return None, [*problems, f"{where}: headers must be a table of header names and text values."]
    key = ""
    if key_env:
        value = _lookup(secrets, key_env) or env.get(key_env) or ""
        key = str(value).strip()
    endpoint = Endpoint(name, base.strip().rstrip("/"), key_env,
                        tuple(dict.fromkeys(m.strip() for m in models if m.strip())),
                        tuple((str(k), str(v)) for k, v in headers.items()), key)
    # the base URL is kept as configured (credentials in it are for the server): pages show shown_url
    return endpoint, problems


def shown_url(endpoint: Endpoint) -> str:
    """The base URL fit for a page or a terminal: user:password@ and key-bearing query strings masked."""
    return redact(endpoint.base_url, [endpoint.key])


def parse_endpoints(secrets: Mapping[str, Any] | None, env: Mapping[str, str]) -> tuple[tuple[Endpoint, ...],
                                                                                          tuple[str, ...]]:
    """The endpoints configured in ``secrets`` (``[endpoints.<name>]``) and ``env`` (``RAG_FT_ENDPOINTS``, JSON),
    secrets winning by name, and the configuration problems in plain words (bad entries are left out, not fatal:
    one typo must not take the app down)."""
    tables: dict[str, Any] = {}
    problems: list[str] = []
    table = _lookup(secrets, SECRETS_TABLE)
    if isinstance(table, Mapping):
        tables.update(_plain(table))
    elif table is not None:
        problems.append("[endpoints] in secrets.toml must hold tables: [endpoints.<name>] with base_url = ...")
    text = env.get(ENV_KEY)
    if text and text.strip():
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            problems.append(f'{ENV_KEY} must be a JSON object: {{"name": {{"base_url": "http://...", '
                            f'"models": ["..."], "key_env": "NAME_OF_KEY"}}}}.')
        else:  # secrets' entries first, in their order; an entry named in both comes from secrets
            tables.update({k: v for k, v in data.items() if k not in tables})
    out = []
    for name, raw in tables.items():
        endpoint, found = _entry(str(name), raw, secrets, env)
        problems += found
        if endpoint is not None:
            out.append(endpoint)
    return tuple(out), tuple(problems)


def implicit_openai(settings: Settings) -> Endpoint | None:
    """OPENAI_API_KEY / OPENAI_BASE_URL as the endpoint ``openai`` when OpenAI is the active provider (and no
    ``[endpoints.openai]`` replaces it); its one model is the settings' chat model."""
    if settings.active_provider != "openai" or any(e.name == IMPLICIT for e in settings.endpoints):
        return None
    return Endpoint(IMPLICIT, (settings.openai_base_url or OPENAI_DEFAULT_BASE).rstrip("/"),
                    "OPENAI_API_KEY", (settings.chat_model_name,), key=settings.openai_api_key)


def all_endpoints(settings: Settings) -> list[Endpoint]:
    implicit = implicit_openai(settings)
    return [*([implicit] if implicit else []), *settings.endpoints]


def find_endpoint(settings: Settings, name: str) -> Endpoint:
    for endpoint in all_endpoints(settings):
        if endpoint.name == name:
            return endpoint
    raise EndpointError(f"No endpoint named {name!r} is configured any more: see the Settings page.")


def _model_ids(payload: Any) -> tuple[str, ...]:
    """The ids of an OpenAI-style model list ({"data": [{"id": ...}]}); Ollama and vLLM answer the same way."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise ValueError("not a model list")
    ids = [str(m["id"])[:200] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str | int)]
    ids = [i for i in ids if i.strip() and i.isprintable()]  # no terminal escapes, no blank picker entries
    return tuple(dict.fromkeys(ids))[:MAX_MODELS]


def health(endpoint: Endpoint, timeout: float = 3.0) -> Health:
    """Ask the server for its model list (GET /models): ok and the models, or the problem in plain words."""
    started = time.perf_counter()
    base = endpoint.base_url
    shown = shown_url(endpoint)
    request = urllib.request.Request(f"{base}/models", headers=endpoint.request_headers())

    def problem(text: str) -> Health:
        return Health(False, (), redact(text, [endpoint.key]), time.perf_counter() - started)

    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            models = _model_ids(json.load(response))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            fix = (f"check the secret {endpoint.key_env}" if endpoint.key_state == "set" else
                   f"set the secret or environment variable {endpoint.key_env}" if endpoint.key_env else
                   "name the secret holding its key in key_env")
            return problem(f"{shown} refused the request as unauthorised (401): {fix}.")
        if exc.code == 403:
            return problem(f"{shown} answered 403: the key has no access here (check its project or permissions).")
        if exc.code == 404:
            return problem(f"{shown} has no /models (404): check base_url, which usually ends in /v1.")
        return problem(f"{shown} answered HTTP {exc.code} to a model list request.")
    except TimeoutError:
        return problem(f"{shown} did not answer within {timeout:g} s: is the server up and reachable?")
    except urllib.error.URLError as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return problem(f"{shown} did not answer within {timeout:g} s: is the server up and reachable?")
        return problem(f"Cannot reach {shown} ({reason}): is the server running, and is base_url right?")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return problem(f"{shown} answered, but not with a model list ({type(exc).__name__}): check base_url.")
    _remember(endpoint, models)
    return Health(True, models, "", time.perf_counter() - started)


# Listings of endpoints that name no models, per process: the picker must not ask the server on every page run.
_LISTED: dict[tuple[str, str, tuple[tuple[str, str], ...]], tuple[float, tuple[str, ...]]] = {}
_LISTED_LOCK = threading.Lock()


def _remember(endpoint: Endpoint, models: tuple[str, ...], ttl: float = LISTED_TTL_S) -> None:
    with _LISTED_LOCK:
        _LISTED[(endpoint.base_url, endpoint.key, endpoint.headers)] = (time.monotonic() + ttl, models)


def endpoint_models(endpoint: Endpoint, timeout: float = 2.0) -> tuple[str, ...]:
    """The chat models an endpoint offers: its configured ``models``, else those its server lists (asked at most
    every few minutes; an unreachable server lists none for a minute, then is asked again)."""
    if endpoint.models:
        return endpoint.models
    with _LISTED_LOCK:
        until, models = _LISTED.get((endpoint.base_url, endpoint.key, endpoint.headers), (0.0, ()))
    if until < time.monotonic():
        checked = health(endpoint, timeout)
        models = checked.models
        if not checked.ok:
            _remember(endpoint, (), FAILED_TTL_S)
    return tuple(m for m in models if not NOT_CHAT.search(m))
