"""Streamlit glue shared by the pages: settings from st.secrets + env, cached engine objects, sidebar.

Only Streamlit wiring lives here; everything a test of the engine would call is in ``rag_ft``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import streamlit as st
from langchain_core.language_models import BaseChatModel

import rag_ft  # noqa: F401  (offline env + SQLite swap before anything imports chromadb)
from rag_ft.models.catalogue import ModelChoice, chat_model_for
from rag_ft.models.providers import ProviderStatus, get_chat_model, get_embeddings, provider_status
from rag_ft.settings import Settings, SettingsError, load_settings


def _secrets() -> dict:
    try:
        # tables are skipped, but [endpoints.<name>] (rag_ft.models.endpoints reads them)
        return {k: v for k, v in st.secrets.items() if not isinstance(v, dict) or k == "endpoints"}
    except FileNotFoundError:  # no secrets.toml: StreamlitSecretNotFoundError
        return {}
    except Exception:  # a malformed secrets.toml must not take the app down
        st.session_state["_secrets_error"] = True
        return {}


def settings() -> Settings:
    if not st.session_state.get("_routed"):
        # A page URL opened on a freshly started server runs the page file alone (Streamlit uses pages/
        # until some session has called st.navigation): send it through the router, which comes back here.
        caller = Path(inspect.stack()[1].filename)
        if caller.parent.name == "pages":
            st.session_state["_wanted_page"] = f"pages/{caller.name}"
        st.switch_page("app.py", query_params=st.query_params.to_dict())  # keep ?c=... (the conversation)
    overrides = st.session_state.get("settings_overrides", {})
    try:
        return load_settings(secrets=_secrets(), **overrides)
    except SettingsError as exc:
        st.error(str(exc))
        st.stop()


def restore_widgets(keys: tuple[str, ...]) -> None:
    """Streamlit drops a page's widget state when the user visits another page: give these widgets back the
    values ``keep_widgets`` copied to plain keys (call before the widgets are drawn)."""
    for k in keys:
        if k not in st.session_state and f"_kept_{k}" in st.session_state:
            st.session_state[k] = st.session_state[f"_kept_{k}"]


def keep_widgets(keys: tuple[str, ...]) -> None:
    """Copy these widgets' values to plain keys, which outlive a visit to another page (call after the widgets)."""
    for k in keys:
        if k in st.session_state:
            st.session_state[f"_kept_{k}"] = st.session_state[k]


@st.cache_data(ttl=60, show_spinner=False)
def _status(s: Settings) -> ProviderStatus:
    return provider_status(s)


@st.cache_resource(show_spinner="Loading the embedding model (first use only)...")
def embeddings(s: Settings):
    return get_embeddings(s)


@st.cache_resource(show_spinner="Loading the chat model (first use only)...")
def chat_model(s: Settings, choice: ModelChoice | None = None, max_tokens: int = 256) -> BaseChatModel:
    """The one cache of chat models for every page: ``choice`` is a model picked in the catalogue (None: the
    settings' chat model); ``max_tokens`` the answer length (evaluation runs keep it short)."""
    if choice is None:
        return get_chat_model(s, max_tokens=max_tokens)
    return chat_model_for(s, choice, max_tokens=max_tokens)


def sidebar(s: Settings) -> ProviderStatus:
    status = _status(s)
    with st.sidebar:
        st.markdown("**Provider**")
        badge = ":green-badge[ready]" if status.ok else ":red-badge[needs attention]"
        st.markdown(f"`{status.provider}` {badge}")
        st.caption(f"Chat: `{status.chat_model}`  \nEmbeddings: `{status.embedding_model}`")
        st.caption("OpenAI API key: " + ("set" if s.has_api_key else "not set"))
        if s.openai_base_url:
            st.caption(f"Base URL: `{s.openai_base_url}`")
        st.caption(f"Data folder: `{s.data_dir}`")
        if s.chroma_host:
            st.caption(f"Chroma server: `{s.chroma_host}:{s.chroma_port}`")
        if not status.ok:
            st.error(status.message, icon=":material/error:")
        elif not s.has_api_key:
            st.caption(status.message)
        if st.session_state.get("_secrets_error"):
            st.warning("`.streamlit/secrets.toml` could not be read: check its TOML syntax.")
    return status


# ---- chat (the lead's section) ----
def collections(s: Settings) -> list[str]:
    try:
        from rag_ft.index.documents import list_collections

        names = list_collections(s)
    except Exception:
        names = []
    return names or ["default"]


def has_documents(s: Settings, collection: str) -> bool:
    from rag_ft.index.documents import list_documents

    return any(d.status == "indexed" for d in list_documents(s, collection))


def retriever(s: Settings):
    """The hybrid retriever (a LangChain ``BaseRetriever``) over this data folder, with the settings' defaults."""
    from rag_ft.retrieval.hybrid import HybridRetriever

    return HybridRetriever(s, embeddings(s))


def add_chat_example(s: Settings, question: str, answer: str, result, notes: str = "") -> int | None:
    """A thumbs-up, edited or thumbs-down answer becomes a draft training example (source: chat)."""
    try:
        from rag_ft.training.examples import ExampleStore
    except ImportError:
        return None
    passages = list(result.passages) if result is not None else []
    store = ExampleStore(s.db_path)
    try:
        return store.add_from_chat(question, answer, passages, notes=notes)
    finally:
        store.close()


def update_chat_example(s: Settings, example_id: int, answer: str) -> None:
    """An answer edited after it was sent: its example takes the edit (the answer stays one example)."""
    from rag_ft.training.examples import ExampleError, ExampleStore

    store = ExampleStore(s.db_path)
    try:
        store.set_text(example_id, "assistant", answer)
    except ExampleError:  # deleted for good on the Training data page meanwhile: nothing to follow
        pass
    finally:
        store.close()


def new_chat() -> None:
    """Start an empty conversation under a new id (the URL changes with it)."""
    from rag_ft.chat.conversations import new_conversation_id

    st.session_state["chat_conversation"] = new_conversation_id()
    st.session_state["chat_messages"] = []
    st.query_params["c"] = st.session_state["chat_conversation"]


def chat_conversation(s: Settings) -> tuple[str, list[dict]]:
    """The conversation the Chat page shows, as (id, messages): the one named in the URL (``?c=<id>``),
    loaded from the data folder when this session does not hold it (a reload, a bookmark); else the session's
    own; else a new one. The id is written back to the URL, so reloading the page brings the conversation back.
    """
    from rag_ft.chat.conversations import ConversationStore, new_conversation_id, valid_conversation_id

    in_url = st.query_params.get("c")
    current = st.session_state.get("chat_conversation")
    if valid_conversation_id(in_url) and in_url != current:
        store = ConversationStore(s.db_path)
        try:
            st.session_state["chat_messages"] = store.load(in_url)
        finally:
            store.close()
        current = st.session_state["chat_conversation"] = in_url
    elif not valid_conversation_id(current):
        current = st.session_state["chat_conversation"] = new_conversation_id()
        st.session_state["chat_messages"] = []
    if in_url != current:  # e.g. back from another page, whose URL has no ?c=
        st.query_params["c"] = current
    return current, st.session_state.setdefault("chat_messages", [])


def save_conversation(s: Settings, conversation_id: str, messages: list[dict]) -> None:
    from rag_ft.chat.conversations import ConversationStore

    if not messages:
        return  # an empty "New chat" leaves no row behind
    store = ConversationStore(s.db_path)
    try:
        store.save(conversation_id, messages)
    finally:
        store.close()


# ---- compare / evaluation ----
def eval_store(s: Settings):
    from rag_ft.evaluation import EvalStore

    return EvalStore(s.db_path)


def warm_up(s: Settings, model, rag: bool = True) -> float:
    """Load what the first answer would otherwise wait for: the embedding model (for RAG), the local runtime,
    and the model's LoRA adapter. Returns the seconds it took (0.0 when everything was loaded already), so the
    Chat page can say so and keep loading out of the answer's timings. The caller shows the progress."""
    import time

    from rag_ft.models.local_chat import LocalChatModel, load_runtime
    from rag_ft.models.local_embeddings import LocalEmbeddings, load_sentence_transformer

    started, loaded = time.perf_counter(), False
    if rag and isinstance(embeddings(s), LocalEmbeddings) and load_sentence_transformer.cache_info().currsize == 0:
        load_sentence_transformer()
        loaded = True
    if isinstance(model, LocalChatModel):
        loaded = loaded or load_runtime.cache_info().currsize == 0
        runtime = load_runtime()
        if model.adapter_dir and str(model.adapter_dir) not in runtime.adapters:
            with runtime.lock, runtime.model(model.adapter_dir):  # loads the adapter onto the base model
                loaded = True
    return time.perf_counter() - started if loaded else 0.0
