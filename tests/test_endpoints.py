"""Named OpenAI-compatible endpoints against two fake OpenAI servers running at once, each with its own key,
models and reply: the catalogue lists both, answers reach the right server with the right key, health checks,
configuration problems, the ``models`` command, and no key in the data folder. Nothing of ours is patched."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fake_openai import GOOD_KEY, FakeOpenAI, Request, Response, error

from rag_ft.chat.chain import RagChain
from rag_ft.models.catalogue import available_models, chat_model_for
from rag_ft.models.endpoints import health, parse_endpoints
from rag_ft.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
ALPHA_KEY = "alpha-secret-key-0001"  # no known key format: only the registered-secret masking hides it
BETA_KEY = "sk-beta-secret-key-0002"


class KeyedFake(FakeOpenAI):
    """A FakeOpenAI that wants its own key (the base class accepts only GOOD_KEY); requests are recorded as sent."""

    def __init__(self, key: str, models: list[str], reply: str) -> None:
        super().__init__()
        self.key, self.models, self.reply_text = key, models, reply

    def dispatch(self, req: Request) -> Response:
        if req.headers.get("authorization") != f"Bearer {self.key}":
            return error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return super().dispatch(replace(req, headers={**req.headers, "authorization": f"Bearer {GOOD_KEY}"}))


@pytest.fixture
def servers():
    alpha = KeyedFake(ALPHA_KEY, ["alpha-chat-1", "alpha-chat-2"], "Alpha says the refund window is 30 days.").start()
    beta = KeyedFake(BETA_KEY, ["beta-chat", "beta-embed-small"], "Beta answers from the other server.").start()
    yield alpha, beta
    alpha.stop()
    beta.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure(alpha: FakeOpenAI, beta: FakeOpenAI, data_dir: Path, **extra_env: str):
    """alpha from secrets (key a top-level secret, named models, an extra header); beta from RAG_FT_ENDPOINTS
    (key in the environment, models listed by the server)."""
    secrets = {"ALPHA_KEY": ALPHA_KEY, "endpoints": {"alpha": {
        "base_url": alpha.base_url, "key_env": "ALPHA_KEY", "models": ["alpha-chat-1", "alpha-chat-2"],
        "headers": {"X-Team": "docs"}}}}
    env = {"RAG_FT_DATA_DIR": str(data_dir), "RAG_FT_PROVIDER": "local", "BETA_KEY": BETA_KEY,
           "RAG_FT_ENDPOINTS": json.dumps({"beta": {"base_url": beta.base_url, "key_env": "BETA_KEY"}}), **extra_env}
    return load_settings(env=env, secrets=secrets)


def chats(server: FakeOpenAI) -> list[Request]:
    return [r for r in server.requests if r.path == "/v1/chat/completions"]


def test_both_endpoints_are_pickable_and_each_answers_from_its_own_server(servers, data_dir):
    alpha, beta = servers
    s = configure(alpha, beta, data_dir)
    choices = available_models(s)
    labels = [c.label for c in choices]
    # the local default stays first; the endpoints' models follow, beta's as its server lists them (no embeddings)
    assert labels[-4:] == ["SmolLM2-135M-Instruct", "alpha-chat-1 · alpha", "alpha-chat-2 · alpha", "beta-chat · beta"]
    assert choices[0].backend == "local" and choices[0].endpoint is None
    by_label = {c.label: c for c in choices}

    for label, server, other, key, reply in (("alpha-chat-2 · alpha", alpha, beta, ALPHA_KEY, "Alpha says"),
                                             ("beta-chat · beta", beta, alpha, BETA_KEY, "Beta answers")):
        choice = by_label[label]
        assert (choice.backend, choice.endpoint) == ("openai", label.split(" · ")[1])
        before = len(chats(other))
        result = RagChain(chat_model_for(s, choice, max_tokens=32), model_label=label).run("How long is the window?")
        assert result.text.startswith(reply) and result.output_tokens > 0  # streamed, with usage
        sent = chats(server)[-1]
        assert sent.headers["authorization"] == f"Bearer {key}"
        assert sent.json["model"] == choice.model and sent.json["stream"] is True
        assert len(chats(other)) == before  # the other server heard nothing of it
    assert chats(alpha)[-1].headers["x-team"] == "docs"
    assert "x-team" not in chats(beta)[-1].headers


def test_health_ok_for_both_and_plain_problems_otherwise(servers, data_dir):
    alpha, beta = servers
    port = closed_port()
    s = configure(alpha, beta, data_dir, RAG_FT_ENDPOINTS=json.dumps({
        "beta": {"base_url": beta.base_url, "key_env": "BETA_KEY"},
        "dead": {"base_url": f"http://127.0.0.1:{port}/v1", "models": ["x"]},
        "nokey": {"base_url": beta.base_url, "key_env": "UNSET_KEY_NAME"},
        "wrongpath": {"base_url": beta.base_url.removesuffix("/v1") + "/api", "key_env": "BETA_KEY"}}))
    ep = {e.name: e for e in s.endpoints}
    for name, models in (("alpha", ("alpha-chat-1", "alpha-chat-2")), ("beta", ("beta-chat", "beta-embed-small"))):
        h = health(ep[name])
        assert h.ok and h.models == models and h.problem == ""
    dead = health(ep["dead"], timeout=2)
    assert not dead.ok and dead.problem.startswith(f"Cannot reach http://127.0.0.1:{port}/v1")
    assert "server running" in dead.problem
    assert ep["nokey"].key_state == "missing" and ep["alpha"].key_state == "set"
    refused = health(ep["nokey"])
    assert not refused.ok and "(401)" in refused.problem and "UNSET_KEY_NAME" in refused.problem
    assert "(404)" in health(ep["wrongpath"]).problem and "/v1" in health(ep["wrongpath"]).problem
    # an endpoint whose server is down lists no models: it is left out of the picker, the others stay
    labels = [c.label for c in available_models(s)]
    assert "x · dead" in labels and not any(label.endswith(" · nokey") for label in labels)


def test_configuration_problems_are_reported_and_bad_entries_left_out(servers):
    alpha, _ = servers
    secrets = {"endpoints": {
        "good": {"api_base": alpha.base_url + "/", "api_key_name": "ALPHA_KEY", "models": "m1, m2"},  # llm's names
        "typo": {"base_url": "localhost:11434/v1"},
        "leaky": {"base_url": alpha.base_url, "api_key": ALPHA_KEY, "models": ["m"]},
        "bad name!": {"base_url": alpha.base_url},
        "same": {"base_url": "http://from-secrets/v1"}}}
    env = {"ALPHA_KEY": ALPHA_KEY, "RAG_FT_ENDPOINTS": json.dumps({"same": {"base_url": "http://from-env/v1"}})}
    endpoints, problems = parse_endpoints(secrets, env)
    by_name = {e.name: e for e in endpoints}
    assert set(by_name) == {"good", "leaky", "same"}
    assert by_name["good"].base_url == alpha.base_url and by_name["good"].models == ("m1", "m2")
    assert by_name["good"].key == ALPHA_KEY  # looked up from the environment by name
    assert by_name["leaky"].key == "" and by_name["leaky"].key_state == "none"  # a key in the table is not used
    assert by_name["same"].base_url == "http://from-secrets/v1"  # secrets win over the environment
    text = " ".join(problems)
    assert "'typo': base_url must start with http://" in text and "'bad name!'" in text
    assert "keys do not belong in the endpoint table" in text and ALPHA_KEY not in text
    assert ALPHA_KEY not in repr(endpoints)
    _, problems = parse_endpoints({}, {"RAG_FT_ENDPOINTS": "[not json"})
    assert problems and problems[0].startswith("RAG_FT_ENDPOINTS must be a JSON object")


def test_openai_settings_stay_the_openai_endpoint_and_local_models_stay_local(fake_openai, data_dir):
    s = load_settings(env={"RAG_FT_DATA_DIR": str(data_dir), "OPENAI_API_KEY": GOOD_KEY,
                           "OPENAI_BASE_URL": fake_openai.base_url})
    choices = available_models(s)
    first = choices[0]
    assert (first.label, first.endpoint, first.backend) == ("gpt-4.1-mini", "openai", "openai")
    assert RagChain(chat_model_for(s, first, max_tokens=16)).run("Capital of France?").text.startswith("Paris")
    assert chats(fake_openai)[-1].headers["authorization"] == f"Bearer {GOOD_KEY}"
    local = next(c for c in choices if c.label == "SmolLM2-135M-Instruct")  # pickable next to OpenAI's
    from rag_ft.models.local_chat import LocalChatModel

    assert isinstance(chat_model_for(s, local), LocalChatModel)  # built, not loaded: routed to this machine


def test_models_command_lists_both_endpoints_and_never_prints_a_key(servers, tmp_path, data_dir):
    alpha, beta = servers
    home = tmp_path / "home"
    (home / ".streamlit").mkdir(parents=True)
    # alpha from the working folder's secrets file (as the app reads it), beta from the environment
    (home / ".streamlit" / "secrets.toml").write_text(
        f'ALPHA_KEY = "{ALPHA_KEY}"\n[endpoints.alpha]\nbase_url = "{alpha.base_url}"\nkey_env = "ALPHA_KEY"\n'
        'models = ["alpha-chat-1"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_FT_", "CHROMA_"))}
    env.update(RAG_FT_DATA_DIR=str(data_dir), RAG_FT_PROVIDER="local", PYTHONPATH=str(ROOT), HOME=str(home),
               BETA_KEY=BETA_KEY, RAG_FT_ENDPOINTS=json.dumps({"beta": {"base_url": beta.base_url,
                                                                         "key_env": "BETA_KEY"}}))
    run = subprocess.run([sys.executable, "-m", "rag_ft", "models", "--json", "--check"], cwd=home, env=env,
                         text=True, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    rows = {m["label"]: m for m in out["models"]}
    assert rows["alpha-chat-1 · alpha"]["endpoint"] == "alpha" and rows["alpha-chat-1 · alpha"]["model"] == "alpha-chat-1"
    assert rows["beta-chat · beta"]["base_url"] == beta.base_url
    assert rows["SmolLM2-135M-Instruct"]["endpoint"] is None and rows["SmolLM2-135M-Instruct"]["kind"] == "base"
    endpoints = {e["name"]: e for e in out["endpoints"]}
    assert endpoints["alpha"]["key"] == "set" and endpoints["alpha"]["key_env"] == "ALPHA_KEY" and endpoints["beta"]["ok"]
    table = subprocess.run([sys.executable, "-m", "rag_ft", "models"], cwd=home, env=env, text=True,
                           capture_output=True, timeout=120)
    assert table.returncode == 0 and "beta-chat · beta" in table.stdout and "key BETA_KEY set" in table.stderr
    for text in (run.stdout, run.stderr, table.stdout, table.stderr):
        assert ALPHA_KEY not in text and BETA_KEY not in text


def test_keys_are_never_written_to_the_data_folder(servers, data_dir):
    from rag_ft.chat.conversations import ConversationStore, new_conversation_id

    alpha, beta = servers
    s = configure(alpha, beta, data_dir)
    by_label = {c.label: c for c in available_models(s)}
    messages = []
    for label in ("alpha-chat-1 · alpha", "beta-chat · beta"):
        result = RagChain(chat_model_for(s, by_label[label], max_tokens=16), model_label=label).run("Hello?")
        messages += [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": result.text,
                                                              "model": label}]
    store = ConversationStore(s.db_path)
    try:
        store.save(new_conversation_id(), messages)
    finally:
        store.close()
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files  # the conversation's SQLite file at least
    for path in files:
        raw = path.read_bytes()
        assert ALPHA_KEY.encode() not in raw and BETA_KEY.encode() not in raw, path


def test_a_hosted_fine_tune_is_pickable_and_answers_through_its_service_endpoint(fake_openai, data_dir):
    """A succeeded Together job's model is listed in the picker and its answers go to Together's
    OpenAI-compatible endpoint with the Together key (here an HTTP-level fake at TOGETHER_BASE_URL)."""
    from fake_openai import GOOD_KEY

    from rag_ft.chat.chain import RagChain
    from rag_ft.models.catalogue import available_models, chat_model_for
    from rag_ft.settings import load_settings
    from rag_ft.training.jobs import JobStore

    tuned = "acme/Meta-Llama-3.1-8B-Instruct-Reference-style-x-1a2b3c"
    fake_openai.models.append(tuned)
    settings = load_settings(env={"RAG_FT_DATA_DIR": str(data_dir), "RAG_FT_PROVIDER": "local",
                                  "TOGETHER_API_KEY": GOOD_KEY, "TOGETHER_BASE_URL": fake_openai.base_url})
    store = JobStore(settings.db_path, settings.data_dir)
    job = store.create_job("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
                           [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
                           None, {}, "style-x")
    store.register_model(job.id, "style-x", model_id=tuned)
    store.set_status(job.id, "succeeded")
    store.close()
    choice = next(c for c in available_models(settings) if c.model == tuned)
    assert choice.kind == "tuned" and choice.endpoint == "together"
    result = RagChain(chat_model_for(settings, choice)).run("Say hello")
    assert result.text == fake_openai.reply_text
    chat = [r for r in fake_openai.requests if r.path.endswith("/chat/completions")][-1]
    assert chat.json["model"] == tuned and chat.headers["authorization"] == f"Bearer {GOOD_KEY}"
    # without the Together key the model is not offered (nothing could answer)
    bare = load_settings(env={"RAG_FT_DATA_DIR": str(data_dir), "RAG_FT_PROVIDER": "local"})
    assert all(c.model != tuned for c in available_models(bare))
