from pathlib import Path

import pytest

from rag_ft.settings import Settings, SettingsError, load_settings


def test_defaults_are_offline_local():
    s = load_settings(env={})
    assert s.provider == "auto" and s.active_provider == "local"
    assert s.data_dir == Path(".data")
    assert s.chat_model_name == "SmolLM2-135M-Instruct"
    assert s.embedding_model_name == "all-MiniLM-L6-v2"
    assert s.chroma_host == "" and s.problems() == []


def test_environment_sets_every_field():
    env = {"RAG_FT_DATA_DIR": "/tmp/x", "OPENAI_API_KEY": "sk-abc", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
           "RAG_FT_CHAT_MODEL": "gpt-x", "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": "8123", "RAG_FT_K": "6",
           "RAG_FT_RELEVANCE_THRESHOLD": "0.4", "RAG_FT_HYBRID": "false"}
    s = load_settings(env=env)
    assert s.data_dir == Path("/tmp/x") and s.active_provider == "openai"
    assert s.chat_model_name == "gpt-x" and s.embedding_model_name == "text-embedding-3-small"
    assert (s.chroma_host, s.chroma_port, s.retrieval_k, s.relevance_threshold, s.hybrid) == (
        "127.0.0.1", 8123, 6, 0.4, False)


def test_secrets_win_over_environment():
    s = load_settings(env={"OPENAI_API_KEY": "sk-env", "RAG_FT_PROVIDER": "local"},
                      secrets={"OPENAI_API_KEY": "sk-secret", "RAG_FT_PROVIDER": "auto"})
    assert s.openai_api_key == "sk-secret" and s.active_provider == "openai"


def test_secrets_without_file_are_ignored():
    class NoFile:  # st.secrets raises FileNotFoundError when there is no secrets.toml
        def get(self, key):
            raise FileNotFoundError(key)

    assert load_settings(env={}, secrets=NoFile()).active_provider == "local"


def test_key_is_never_printed():
    s = load_settings(env={"OPENAI_API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s)


def test_bad_configuration_is_explained():
    assert "Unknown provider 'gemini'" in Settings(provider="gemini").problems()[0]
    assert "needs OPENAI_API_KEY" in Settings(provider="openai").problems()[0]
    assert "must start with http" in Settings(openai_base_url="localhost:8000").problems()[0]
    with pytest.raises(SettingsError, match="RAG_FT_K must be a number"):
        load_settings(env={"RAG_FT_K": "many"})


def test_secrets_example_documents_every_key():
    from rag_ft.settings import KEYS

    text = (Path(__file__).parent.parent / ".streamlit" / "secrets.toml.example").read_text()
    assert all(key in text for key in KEYS.values())
