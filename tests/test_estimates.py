"""Local training time (documented default, or calibrated from this machine's last local job) and the
overfitting hint; the launch form's inputs."""

from __future__ import annotations

import pytest
from ft_fixtures import style_records

from rag_ft.settings import LOCAL_CHAT_MODEL
from rag_ft.training import dataset, estimates, launch
from rag_ft.training.examples import ExampleStore
from rag_ft.training.jobs import JobStore, Metric


@pytest.fixture
def jobs(settings) -> JobStore:
    store = JobStore(settings.db_path)
    yield store
    store.close()


def _finished_job(jobs: JobStore, backend: str = "local", status: str = "succeeded", batch: int = 2,
                  step_times: tuple[float, ...] = (100.0, 103.0, 106.0, 109.0), tokens: int = 2400) -> str:
    """A job with 4 training examples, 2 epochs, whose steps were logged at ``step_times``."""
    job = jobs.create_job(backend, LOCAL_CHAT_MODEL, style_records(4), None, {"epochs": 2, "batch_size": batch})
    for step, _ in enumerate(step_times, 1):
        jobs.add_metric(job.id, Metric(step, step / 2, 1.0))
    for step, t in enumerate(step_times, 1):  # the times the trainer would have logged
        jobs.conn.execute("UPDATE ft_metrics SET created_at = ? WHERE job_id = ? AND step = ?", (t, job.id, step))
    jobs.update(job.id, trained_tokens=tokens)
    jobs.set_status(job.id, status)
    return job.id


def test_default_rate_matches_the_dataset_estimate_at_batch_4():
    records = style_records(8)
    est = estimates.local_estimate(records, epochs=3, batch=4)
    ds = dataset.estimate(records, LOCAL_CHAT_MODEL, epochs=3)
    assert est.steps == 6 and est.rate is estimates.DEFAULT_RATE
    assert est.seconds == pytest.approx(estimates.LOAD_SECONDS + ds.local_seconds)
    assert est.training_tokens == ds.training_tokens > 0


def test_time_scales_with_batch_once_and_stops_at_max_steps():
    records = style_records(8)
    b4 = estimates.local_estimate(records, epochs=2, batch=4)
    b8 = estimates.local_estimate(records, epochs=2, batch=8)
    per_step = (b4.seconds - estimates.LOAD_SECONDS) / b4.steps
    assert b8.steps == 2 and (b8.seconds - estimates.LOAD_SECONDS) / b8.steps == pytest.approx(2 * per_step)
    capped = estimates.local_estimate(records, epochs=2, batch=4, max_steps=1)
    assert capped.steps == 1 and capped.seconds == pytest.approx(estimates.LOAD_SECONDS + per_step)


def test_rate_is_measured_from_the_latest_succeeded_local_job(jobs):
    assert estimates.measured_rate(jobs) is None  # nothing ran here yet: the page uses the default
    _finished_job(jobs, step_times=(0.0, 10.0))  # older: 10 s per step
    newest = _finished_job(jobs)  # 3 s per step between its first and last logged steps
    _finished_job(jobs, status="failed", step_times=(0.0, 100.0))
    _finished_job(jobs, backend="openai", step_times=(0.0, 100.0))
    rate = estimates.measured_rate(jobs)
    assert rate is not None and newest in rate.source
    assert (rate.seconds, rate.batch, rate.tokens_per_example) == (pytest.approx(3.0), 2, 2400 / 2 / 4)
    # the same examples at the measured batch and length take the measured time per step
    assert rate.per_step(2, 300) == pytest.approx(3.0) and rate.per_step(4, 150) == pytest.approx(3.0)
    text = estimates.launch_estimate(jobs, style_records(4), "local", LOCAL_CHAT_MODEL, 2, 2)
    assert text.startswith("4 steps, about ") and "this computer's measured pace" in text and text.endswith("free")


def test_a_job_with_one_logged_step_or_no_tokens_does_not_calibrate(jobs):
    _finished_job(jobs, step_times=(5.0,))
    _finished_job(jobs, tokens=0)
    assert estimates.measured_rate(jobs) is None
    text = estimates.launch_estimate(jobs, style_records(4), "local", LOCAL_CHAT_MODEL, 1, 4)
    assert text.startswith("1 steps, about ") and "on 2 quiet CPU cores" in text and "training tokens" in text


def test_openai_estimate_text(jobs):
    text = estimates.launch_estimate(jobs, style_records(4), "openai", "gpt-4o-mini-2024-07-18", 2, 4)
    assert "training tokens over 2 epochs · about $" in text
    assert "price unknown" in estimates.launch_estimate(jobs, style_records(4), "openai", "gpt-9", 2, 4)


@pytest.mark.parametrize(("losses", "expected"), [
    ([1.9, 1.5, 1.7, 2.1], (2, 1.5, 4, 2.1)),
    ([1.9, 1.5, 1.55], None),  # within 5 % of the best: noise
    ([1.9, 1.5, 1.4], None),  # still falling
    ([1.5], None),  # one validation point says nothing
])
def test_overfitting_hint(losses, expected):
    metrics = [Metric(step, step / 2, 1.0, None, v) for step, v in enumerate(losses, 1)]
    metrics.insert(1, Metric(10, None, 0.5))  # training-only rows are ignored
    metrics.sort(key=lambda m: m.step)
    hint = estimates.overfitting(metrics)
    if expected is None:
        assert hint is None
    else:
        assert (hint.best_step, hint.best_loss, hint.last_step, hint.last_loss) == expected
        assert "may be overfitting" in hint.message and "checkpoint at step 2" in hint.message


def test_launch_inputs(settings):
    store = ExampleStore(settings.db_path)
    a = store.add(style_records(1)[0]["messages"], status="approved")
    store.add(style_records(2)[1]["messages"], status="approved", split="validation")
    store.add(style_records(3)[2]["messages"])  # a draft: not trained on
    train, valid = launch.approved_records(settings.db_path)
    assert train == [store.get(a).record()] and len(valid) == 1
    records = style_records(17)
    train, valid = launch.sample_split(records)
    assert valid == records[:2] and train == records[2:]
    assert launch.sample_split(records[:3])[1] == records[:1]  # at least one validates
    assert launch.learning_rate_multiplier(" auto") == "auto" and launch.learning_rate_multiplier("") == "auto"
    assert launch.learning_rate_multiplier("0.5") == 0.5
    with pytest.raises(ValueError, match="must be 'auto' or a number"):
        launch.learning_rate_multiplier("fast")


def test_check_before_training_names_examples_and_exports_clean_records(settings):
    store = ExampleStore(settings.db_path)
    good = [store.add(r["messages"], status="approved") for r in style_records(3)]
    bad = store.add([{"role": "user", "content": "no answer"}], status="approved")
    store.add(style_records(1)[0]["messages"], status="approved", split="validation")
    store.add(style_records(2)[1]["messages"])  # a draft: not checked, not exported
    check = launch.check_approved(settings.db_path, "gpt-4o-mini-2024-07-18", epochs=2)
    assert len(check.train) == 3 and len(check.validation) == 1 and check.left_out == 1
    assert ("error", f"#{bad}: no assistant message") in check.problems
    assert ("error", "3 valid example(s): fine-tuning needs at least 10") in check.problems and not check.passes
    assert check.estimate.examples == 3 and check.estimate.epochs == 2
    label, value, _ = check.price()
    assert label == "Estimated cost" and value.startswith("$")
    store.delete(bad)
    local = launch.check_approved(settings.db_path, LOCAL_CHAT_MODEL)
    assert local.price()[0] == "Estimated CPU time" and local.price()[2] == f"From {estimates.DEFAULT_RATE.source}"
    assert [level for level, _ in local.problems] == ["error"] and good
