"""The OpenAI backend against the HTTP-level fake (real `openai` client, nothing of ours patched)."""

import base64

import pytest
from fake_openai import GOOD_KEY
from fake_openai_ft import install
from ft_fixtures import jsonl, style_records

from rag_ft.training.backends import openai as fo
from rag_ft.training.jobs import JobStore, list_tuned_models


@pytest.fixture
def fake(fake_openai):
    return install(fake_openai)


@pytest.fixture
def backend(fake):
    return fo.OpenAIBackend(GOOD_KEY, fake.base_url)


def poll_until_done(backend, store, job_id, limit=20):
    for _ in range(limit):
        job = backend.sync(store, job_id)
        if job.is_terminal:
            return job
    raise AssertionError(store.get(job_id).status)


def test_success_with_metrics_checkpoints_and_result_file(settings, fake, backend):
    store = JobStore(settings.db_path)
    job = backend.start_job(store, style_records(4), style_records(2),
                            {"epochs": 2, "batch_size": 2, "learning_rate_multiplier": 0.5, "seed": 7},
                            suffix="style", base_model="gpt-4o-mini-2024-07-18")
    assert job.status == "validating_files" and job.external_id.startswith("ftjob-")
    uploads = [r for r in fake.requests if r.path == "/v1/files"]
    assert len(uploads) == 2 and b'name="purpose"' in uploads[0].body and b"fine-tune" in uploads[0].body
    create = next(r for r in fake.requests if r.path == "/v1/fine_tuning/jobs" and r.method == "POST").json
    assert create["method"] == {"type": "supervised", "supervised": {"hyperparameters": {
        "n_epochs": 2, "batch_size": 2, "learning_rate_multiplier": 0.5}}}
    assert (create["suffix"], create["seed"]) == ("style", 7) and create["validation_file"].startswith("file-")
    statuses = []
    for _ in range(10):
        job = backend.sync(store, job.id)
        statuses.append(job.status)
        if job.is_terminal:
            break
    assert statuses[:3] == ["queued", "running", "running"] and statuses[-1] == "succeeded"
    metrics = store.metrics(job.id)
    assert [m.step for m in metrics] == [1, 2, 3, 4]
    assert metrics[1].valid_loss is not None and metrics[0].train_token_accuracy is not None
    assert [c.step for c in store.checkpoints(job.id)] == [2, 4]
    assert store.checkpoints(job.id)[0].location.endswith("ckpt-step-2")
    events = [e.message for e in store.events(job.id)]
    assert "Files validated, moving job to queued state" in events and "Step 4/4: training loss=0.4000" in events
    assert len(events) == len(set(events)), "events stored twice"
    assert any(e.startswith("Read 4 step metrics from the result file") for e in events)
    (model,) = list_tuned_models(settings.db_path)
    assert model.backend == "openai" and model.model_id.startswith("ft:gpt-4o-mini-2024-07-18:org-fake:style:")
    assert store.get(job.id).result_model == model.model_id


def test_event_pagination_reads_every_page(settings, fake, backend, monkeypatch):
    monkeypatch.setattr("fake_openai_ft.STEPS_PER_POLL", 60)
    store = JobStore(settings.db_path)
    job = backend.start_job(store, style_records(30), hyperparameters={"epochs": 2, "batch_size": 1})
    poll_until_done(backend, store, job.id)
    assert len(store.metrics(job.id)) == 60  # 60 metric events, more than one page of 50
    pages = [r for r in fake.requests if r.path.endswith("/events")]
    assert any("after=" in r.query for r in pages)


def test_invalid_file_fails_with_param(settings, fake, backend):
    store = JobStore(settings.db_path)
    # passes our line check (it is JSON with messages) but not OpenAI's: no assistant turn
    bad = jsonl(style_records(1)) + b'{"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}]}\n'
    job = backend.start_job(store, bad)
    assert job.status == "failed" and job.error.param == "training_file" and job.external_id is None
    assert "line 2" in job.error.message  # caught before upload: nothing sent
    assert not [r for r in fake.requests if r.path == "/v1/files"]
    job = backend.start_job(store, jsonl(style_records(2)))
    train_id = next(r for r in fake.requests if r.path == "/v1/fine_tuning/jobs" and r.method == "POST").json[
        "training_file"]
    fake.state["files"][train_id]["content"] = b"{oops\n"  # OpenAI's own validation finds what ours did not
    job = poll_until_done(backend, store, job.id)
    assert job.status == "failed" and job.error.code == "invalid_training_file" and job.error.param == "training_file"
    assert fo.explain_error(job.error.code, job.error.message) == fo.INVALID_FILE


def test_cancel(settings, fake, backend):
    store = JobStore(settings.db_path)
    job = backend.start_job(store, style_records(4), hyperparameters={"epochs": 3})
    backend.sync(store, job.id)
    job = backend.cancel(store, job.id)
    assert job.status == "cancelled" and any(r.path.endswith("/cancel") for r in fake.requests)
    assert backend.cancel(store, job.id).status == "cancelled"  # idempotent, no second request
    assert sum(r.path.endswith("/cancel") for r in fake.requests) == 1


def test_permission_denied_is_explained_plainly(settings, fake, backend):
    fake.state["ft_deny"] = True
    store = JobStore(settings.db_path)
    job = backend.start_job(store, style_records(2))
    assert job.status == "failed" and job.error.code == "permission_denied"
    assert "denied access to fine-tuning" in job.error.message  # OpenAI's words kept
    explanation = fo.explain_error(job.error.code, job.error.message)
    assert "2027-01-06" in explanation and "May 2026" in explanation and "local backend" in explanation


def test_quota_wrong_key_and_unknown_status(settings, fake, backend):
    store = JobStore(settings.db_path)
    fake.state["ft_quota"] = True
    job = backend.start_job(store, style_records(2))
    assert job.error.code == "insufficient_quota"
    assert fo.explain_error(job.error.code, job.error.message) == fo.QUOTA
    fake.state["ft_quota"] = False
    job = fo.OpenAIBackend("sk-wrong", fake.base_url).start_job(store, style_records(2))
    assert job.error.code == "invalid_api_key" and fo.explain_error(job.error.code, job.error.message) == fo.AUTH
    job = backend.start_job(store, style_records(2))
    fake.state["ft_status"] = "paused_for_review"
    job = backend.sync(store, job.id)
    assert job.status == "paused_for_review" and not job.is_terminal
    assert "does not know" in fo.explain_status(job.status) and fo.explain_status("running") is None
    assert "does not know" in store.events(job.id)[-1].message


def test_metrics_csv_plain_or_base64():
    csv = b"step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n1,2.0,0.5,,\n2,1.5,0.6,1.7,0.55\n"
    for content in (csv, base64.b64encode(csv)):
        rows = fo.parse_metrics_csv(content)
        assert [(m.step, m.train_loss, m.valid_loss) for m in rows] == [(1, 2.0, None), (2, 1.5, 1.7)]
    assert fo.parse_metrics_csv(b"!!not csv!!") == []
