"""The job store: snapshot, statuses, events, metrics, checkpoints, tuned models (real SQLite)."""

import json
from pathlib import Path

from ft_fixtures import jsonl, style_records

from rag_ft.training.jobs import JobStore, Metric, list_tuned_models, parse_jsonl


def test_create_freezes_the_data_with_hash(settings):
    store = JobStore(settings.db_path)
    recs = style_records(3)
    job = store.create_job("local", "SmolLM2-135M-Instruct", recs, recs[:1], {"epochs": 2}, suffix="style")
    assert job.status == "validating_files" and job.n_train == 3 and job.n_validation == 1
    assert Path(job.train_file).parent == settings.data_dir / "jobs" / job.id
    assert [json.loads(x) for x in Path(job.train_file).read_text().splitlines()] == recs
    recs[0]["messages"][2]["content"] = "changed later"  # the store's copy does not change
    assert "changed later" not in Path(job.train_file).read_text()
    same = store.create_job("local", "m", style_records(3))
    assert same.train_hash == job.train_hash and same.id != job.id
    assert store.get(job.id).hyperparameters == {"epochs": 2}
    assert [j.id for j in store.list()] == [same.id, job.id]  # newest first


def test_status_events_metrics_checkpoints_and_error(settings):
    store = JobStore(settings.db_path)
    job = store.create_job("local", "m", style_records(2))
    store.set_status(job.id, "running", "Started.")
    store.add_metric(job.id, Metric(1, 0.5, train_loss=2.0))
    store.add_metric(job.id, Metric(1, valid_loss=2.5, valid_token_accuracy=0.4))  # merged into step 1
    store.add_metric(job.id, Metric(2, 1.0, train_loss=1.5))
    assert store.metrics(job.id) == [Metric(1, 0.5, 2.0, None, 2.5, 0.4), Metric(2, 1.0, 1.5)]
    store.add_checkpoint(job.id, 2, "/x/ck", 1.0, {"train_loss": 1.5})
    assert store.checkpoints(job.id)[0].metrics == {"train_loss": 1.5}
    assert not store.cancel_requested(job.id)
    store.request_cancel(job.id)
    assert store.cancel_requested(job.id)
    store.fail(job.id, "invalid_training_file", "line 3 is bad", "training_file")
    got = store.get(job.id)
    assert got.status == "failed" and got.is_terminal and got.finished_at
    assert (got.error.code, got.error.param) == ("invalid_training_file", "training_file")
    messages = [e.message for e in store.events(job.id)]
    assert messages[1:] == ["Started.", "Cancellation requested.", "Failed: line 3 is bad"]
    assert store.add_event(job.id, "from OpenAI", external_id="ftevent-1")
    assert not store.add_event(job.id, "from OpenAI", external_id="ftevent-1")  # polled twice, stored once


def test_unknown_status_is_kept_as_is(settings):
    store = JobStore(settings.db_path)
    job = store.create_job("openai", "gpt-4o-mini", style_records(1))
    store.set_status(job.id, "paused_by_openai")
    got = store.get(job.id)
    assert got.status == "paused_by_openai" and not got.is_known_status and not got.is_terminal


def test_tuned_model_registry(settings):
    assert list_tuned_models(settings.db_path) == []
    store = JobStore(settings.db_path)
    job = store.create_job("local", "SmolLM2-135M-Instruct", style_records(1))
    store.register_model(job.id, "SmolLM2-135M-Instruct-style-abc", adapter_dir="/a/b")
    (model,) = list_tuned_models(settings.db_path)
    assert (model.name, model.backend, model.adapter_dir, model.job_id) == (
        "SmolLM2-135M-Instruct-style-abc", "local", "/a/b", job.id)
    assert store.get(job.id).result_model == "SmolLM2-135M-Instruct-style-abc"


def test_parse_jsonl_names_line_and_reason():
    good = style_records(2)
    data = jsonl(good[:1]) + b"{not json\n" + b'{"messages": [{"role": "user", "content": "hi"}]}\n' + jsonl(good[1:])
    records, problems = parse_jsonl(data, "train.jsonl")
    assert records == good
    assert problems[0].startswith("train.jsonl line 2: not valid JSON")
    assert problems[1] == "train.jsonl line 3: no assistant message: there is nothing to learn from this example."
    assert parse_jsonl(b"\n", "empty.jsonl") == ([], ["empty.jsonl has no examples."])
    _, problems = parse_jsonl(b'{"messages": [{"role": "bot", "content": "x"}]}', "f")
    assert "role" in problems[0]
