import numpy as np
import pytest
from fake_openai import GOOD_KEY
from langchain_core.messages import HumanMessage, SystemMessage

from rag_ft.models.providers import get_chat_model, get_embeddings, provider_status
from rag_ft.settings import Settings, SettingsError


def test_local_embeddings_really_embed(local_embeddings):
    cat, kitten, car = np.array(local_embeddings.embed_documents(
        ["A cat is sleeping on the sofa.", "A kitten naps on the couch.", "The car needs new tyres."]))
    assert cat.shape == (384,)
    assert cat @ kitten > cat @ car + 0.2
    assert abs(np.linalg.norm(local_embeddings.embed_query("hello")) - 1) < 1e-4


def test_local_provider_is_default(settings):
    from rag_ft.models.local_chat import LocalChatModel
    from rag_ft.models.local_embeddings import LocalEmbeddings

    assert isinstance(get_embeddings(settings), LocalEmbeddings)
    assert isinstance(get_chat_model(settings), LocalChatModel)
    status = provider_status(settings)
    assert status.ok and status.provider == "local"


def test_local_chat_answers_and_streams(local_chat):
    messages = [SystemMessage("Answer in one short sentence."), HumanMessage("What is the capital of France?")]
    pieces = [c.content for c in local_chat.stream(messages)]
    text = "".join(pieces)
    assert sum(1 for p in pieces if p) > 3  # token by token, not one block
    assert "Paris" in text
    reply = local_chat.invoke(messages)
    assert reply.content.strip() == text.strip()  # greedy: same answer
    assert reply.usage_metadata["input_tokens"] > 10 and reply.usage_metadata["output_tokens"] > 0


def _openai(fake, **kw):
    return Settings(openai_api_key=kw.pop("key", GOOD_KEY), openai_base_url=fake.base_url, **kw)


def test_openai_chat_sends_a_correct_streaming_request(fake_openai):
    model = get_chat_model(_openai(fake_openai))
    text = "".join(c.content for c in model.stream([SystemMessage("Be brief."), HumanMessage("Capital of France?")]))
    assert text == fake_openai.reply_text
    req = [r for r in fake_openai.requests if r.path == "/v1/chat/completions"][-1]
    assert req.headers["authorization"] == f"Bearer {GOOD_KEY}"
    assert req.json["model"] == "gpt-4.1-mini" and req.json["stream"] is True
    assert req.json["messages"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Capital of France?"}]


def test_openai_embeddings_send_plain_strings(fake_openai):
    emb = get_embeddings(_openai(fake_openai))
    vectors = emb.embed_documents(["cats and kittens", "cars"])
    assert len(vectors) == 2 and len(vectors[0]) == 64
    req = [r for r in fake_openai.requests if r.path == "/v1/embeddings"][-1]
    assert req.json["input"] == ["cats and kittens", "cars"]
    assert req.json["model"] == "text-embedding-3-small"


def test_openai_status_ok_bad_key_and_unreachable(fake_openai):
    assert provider_status(_openai(fake_openai)).ok
    bad = provider_status(_openai(fake_openai, key="sk-wrong"))
    assert not bad.ok and "key was refused" in bad.message
    gone = provider_status(Settings(openai_api_key="sk-x", openai_base_url="http://127.0.0.1:9/v1"))
    assert not gone.ok and "Cannot reach http://127.0.0.1:9/v1" in gone.message


def test_unknown_provider_is_refused_with_a_message():
    status = provider_status(Settings(provider="gemini"))
    assert not status.ok and "Unknown provider" in status.message
    with pytest.raises(SettingsError, match="Unknown provider"):
        get_chat_model(Settings(provider="gemini"))
