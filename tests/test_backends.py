"""The fine-tuning backend interface, and the hosted backends' whole job life cycle against HTTP-level fakes
(tests/fake_together.py, tests/fake_fireworks.py): nothing of ours is patched, the real httpx client talks to
a server on 127.0.0.1."""

from datetime import date

import pytest
from fake_fireworks import ACCOUNT, root_url
from fake_fireworks import install as install_fireworks
from fake_openai import GOOD_KEY, FakeOpenAI
from fake_together import install as install_together
from ft_fixtures import jsonl, style_records

from rag_ft.settings import load_settings
from rag_ft.training.backends import registry
from rag_ft.training.backends.base import LaunchRefused, Parameter, Request
from rag_ft.training.backends.openai import OpenAIBackend
from rag_ft.training.jobs import JobStore


@pytest.fixture
def server():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


@pytest.fixture
def store(settings):
    s = JobStore(settings.db_path)
    yield s
    s.close()


def hosted_settings(data_dir, fake, key=GOOD_KEY):
    return load_settings(env={"RAG_FT_DATA_DIR": str(data_dir), "TOGETHER_API_KEY": key,
                              "TOGETHER_BASE_URL": fake.base_url, "FIREWORKS_API_KEY": key,
                              "FIREWORKS_ACCOUNT_ID": ACCOUNT, "FIREWORKS_BASE_URL": root_url(fake)})


def poll_until_settled(backend, store, job_id, polls=12):
    for _ in range(polls):
        job = backend.refresh(store, job_id)
        if job.is_terminal and (job.result_model or job.status != "succeeded"):
            return job
    return store.get(job_id)


# ---- the description ----
def test_every_backend_describes_parameters_the_form_can_build(settings):
    for name in registry.BACKENDS:
        backend = registry.get(name, settings)
        params = backend.available_parameters()
        assert params and backend.base_models() and backend.label
        for p in params:
            assert p.type in ("int", "float", "bool", "choice", "auto_float")
            assert p.parse(p.default) == p.default or p.type == "auto_float"
            assert p.widget_key.startswith("ft_")
        assert len({p.widget_key for p in params}) == len(params)


def test_parameter_parse_names_the_problem():
    epochs = Parameter("n_epochs", "int", 3, "Epochs", min=1, max=20)
    assert epochs.parse("4") == 4
    with pytest.raises(ValueError, match="Epochs must be between 1 and 20"):
        epochs.parse(30)
    with pytest.raises(ValueError, match="whole number"):
        epochs.parse(2.5)
    lrm = Parameter("learning_rate_multiplier", "auto_float", "auto", "Multiplier", min=0.01, max=10)
    assert lrm.parse(" auto ") == "auto" and lrm.parse("0.5") == 0.5
    with pytest.raises(ValueError, match="or 'auto'"):
        lrm.parse("fast")
    rank = Parameter("lora_r", "choice", 8, "LoRA rank", choices=(8, 16))
    with pytest.raises(ValueError, match="one of 8, 16"):
        rank.parse(12)


def test_validation_comes_from_the_description(server, data_dir):
    together = registry.get("together", hosted_settings(data_dir, server))
    bad = Request("not/a-model", style_records(3), hyperparameters={"n_epochs": 0, "lora_r": 12, "bogus": 1},
                  suffix="x" * 41)
    problems = " ".join(together.validate(bad))
    for expected in ("cannot fine-tune 'not/a-model'", "Epochs must be between 1 and 20", "LoRA rank must be one of",
                     "no parameter 'bogus'", "longer than 40"):
        assert expected in problems
    good = Request(together.base_models()[0], style_records(3), hyperparameters={"n_epochs": 2})
    assert together.validate(good) == []


def test_hosted_backends_without_keys_say_which_setting(settings, store):
    for name, words in (("together", "TOGETHER_API_KEY"), ("fireworks", "FIREWORKS_ACCOUNT_ID")):
        backend = registry.get(name, settings)
        assert words in backend.available()
        with pytest.raises(LaunchRefused, match=words):
            backend.start_checked(store, Request(backend.base_models()[0], style_records(3)))
    assert store.list() == []  # a refused launch records nothing


# ---- Together AI ----
def test_together_job_life_cycle(server, data_dir, store):
    install_together(server)
    s = hosted_settings(data_dir, server)
    backend = registry.get("together", s)
    req = Request("Qwen/Qwen2.5-7B-Instruct", style_records(6), style_records(2),
                  {"n_epochs": 2, "batch_size": 8, "lora_r": 16, "lora_alpha": 32, "n_evals": 2}, "style")
    job = backend.start_checked(store, req)
    assert job.external_id and job.external_id.startswith("ft-") and job.status == "queued"
    sent = server.state["tg_jobs"][job.external_id]["_request"]
    assert sent["lora"] is True and sent["lora_r"] == 16 and sent["lora_alpha"] == 32 and sent["n_epochs"] == 2
    assert sent["suffix"] == "style" and sent["n_evals"] == 2 and sent["validation_file"] in server.state["tg_files"]
    assert server.state["tg_files"][sent["training_file"]] == jsonl(style_records(6))  # the frozen bytes, unchanged
    assert job.hyperparameters["learning_rate"] == 1e-5  # defaults from the description, recorded

    job = poll_until_settled(backend, store, job.id)
    assert job.status == "succeeded" and job.result_model.startswith("fakeuser/Qwen2.5-7B-Instruct-style-")
    messages = [e.message for e in store.events(job.id)]
    assert "Together AI status: compressing." in messages and any("is ready" in m for m in messages)
    assert messages.count("Step 1/4") == 1  # every poll returns all events: each is stored once
    assert [m.step for m in store.metrics(job.id)] == [1, 2, 3, 4]
    assert [c.step for c in store.checkpoints(job.id)] == [2, 4]
    [tuned] = store.tuned_models()
    assert tuned.backend == "together" and tuned.model_id == job.result_model
    ep = registry.endpoint(s, job)
    assert ep.model == job.result_model and ep.base_url == server.base_url and ep.provider == "together"


def test_together_cancel_and_failure(server, data_dir, store):
    install_together(server)
    backend = registry.get("together", hosted_settings(data_dir, server))
    model = backend.base_models()[0]
    job = backend.start_checked(store, Request(model, style_records(4)))
    job = backend.cancel(store, job.id)
    assert job.status == "cancelled" and server.state["tg_jobs"][job.external_id]["status"] == "cancelled"
    assert "Cancellation sent to Together AI." in [e.message for e in store.events(job.id)]

    server.state["tg_fail"] = True
    failed = poll_until_settled(backend, store, backend.start_checked(store, Request(model, style_records(4))).id)
    assert failed.status == "failed" and failed.result_model is None and registry.endpoint(
        load_settings(env={}), failed) is None
    assert any("CUDA out of memory" in e.message for e in store.events(failed.id))


def test_together_refusal_is_a_failed_job_with_the_reason(server, data_dir, store):
    install_together(server)
    backend = registry.get("together", hosted_settings(data_dir, server, key="wrong-key"))
    job = backend.start(store, Request(backend.base_models()[0], style_records(4)))
    assert job.status == "failed" and job.error.code == "http_401"
    assert "TOGETHER_API_KEY" in backend.explain(job)
    bad = backend.start(store, Request(backend.base_models()[0], jsonl(style_records(1)) + b"{oops\n"))
    assert bad.status == "failed" and "not valid JSON" in bad.error.message
    assert not [r for r in server.requests if r.path == "/v1/fine-tunes"]


# ---- Fireworks AI ----
def test_fireworks_job_life_cycle_with_deployment(server, data_dir, store):
    install_fireworks(server)
    s = hosted_settings(data_dir, server)
    backend = registry.get("fireworks", s)
    req = Request("accounts/fireworks/models/qwen2p5-7b-instruct", style_records(6), style_records(2),
                  {"epochs": 2, "lora_rank": 16, "learning_rate": 2e-4}, "Style")
    job = backend.start_checked(store, req)
    assert job.status == "validating_files" and "/supervisedFineTuningJobs/" in job.external_id
    sent = server.state["fw_jobs"][job.external_id]["_request"]
    assert sent["loraRank"] == 16 and sent["epochs"] == 2 and sent["learningRate"] == 2e-4
    assert sent["outputModel"].startswith(f"accounts/{ACCOUNT}/models/style-ftjob-")
    assert server.state["fw_datasets"][sent["dataset"]]["_content"] == jsonl(style_records(6))
    assert server.state["fw_datasets"][sent["evaluationDataset"]]["state"] == "READY"

    job = poll_until_settled(backend, store, job.id)
    assert job.status == "succeeded" and job.result_model == sent["outputModel"]
    messages = [e.message for e in store.events(job.id)]
    assert any(m.startswith("Fireworks AI status: deploying.") for m in messages)
    assert messages.index(next(m for m in messages if "deploying" in m)) < messages.index(
        next(m for m in messages if "DEPLOYED" in m))  # deployed before it counts as ready
    assert server.state["fw_deployed"][0]["serverless"] is True
    ep = registry.endpoint(s, job)
    assert ep.base_url == root_url(server) + "/inference/v1" and ep.model == sent["outputModel"]
    assert store.tuned_models()[0].backend == "fireworks"


def test_fireworks_cancel_and_failure(server, data_dir, store):
    install_fireworks(server)
    backend = registry.get("fireworks", hosted_settings(data_dir, server))
    model = backend.base_models()[0]
    job = backend.start_checked(store, Request(model, style_records(4)))
    job = backend.cancel(store, job.id)
    assert job.status == "cancelled" and server.state["fw_deleted"] == [job.external_id]

    server.state["fw_fail"] = True
    failed = poll_until_settled(backend, store, backend.start_checked(store, Request(model, style_records(4))).id)
    assert failed.status == "failed" and "loss is NaN" in failed.error.message
    assert "fw_deployed" not in server.state


# ---- OpenAI: labelled with its end date, not offered after it ----
def test_openai_refused_after_its_end_date_pointing_at_the_others(settings, store):
    s = settings.with_(openai_api_key=GOOD_KEY)
    backend = registry.get("openai", s)
    assert isinstance(backend, OpenAIBackend) and "2027-01-06" in backend.label
    assert backend.available(today=date(2027, 1, 5)) is None
    reason = backend.available(today=date(2027, 1, 6))
    assert "Together AI" in reason and "Fireworks AI" in reason and "stay usable in Chat" in reason
    with pytest.raises(LaunchRefused, match="Together AI or Fireworks AI"):
        backend.start_checked(store, Request(backend.base_models()[0], style_records(4)), today=date(2027, 1, 6))
    with pytest.raises(LaunchRefused):
        backend.start(store, Request(backend.base_models()[0], style_records(4)), today=date(2027, 2, 1))
    assert store.list() == []
    assert [b.name for b in registry.offered(s, today=date(2027, 1, 6))] == ["local", "together", "fireworks"]
    assert "openai" in [b.name for b in registry.offered(s, today=date(2026, 12, 1))]
    assert registry.retired(s, today=date(2027, 1, 6)) == [reason]


def test_local_backend_wraps_the_worker(settings, store):
    local = registry.get("local", settings)
    problems = local.validate(Request(local.base_models()[0], style_records(2), hyperparameters={"rank": 0}))
    assert problems == ["LoRA rank must be between 1 and 64 (got 0)."]
    hp = local.hyperparameters(Request(local.base_models()[0], style_records(2), hyperparameters={"epochs": 1}))
    assert hp["epochs"] == 1 and "max_steps" not in hp  # 0 = "all steps": not sent, as before
