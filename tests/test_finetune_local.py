"""The local backend end to end: a real worker process trains, reports, and is cancelled or killed."""

import os
import signal
import time

import pytest
from ft_fixtures import jsonl, style_records

from rag_ft.training.backends import local as finetune_local
from rag_ft.training.jobs import JobStore, list_tuned_models

pytestmark = pytest.mark.slow
TINY = {"epochs": 2, "batch_size": 2, "max_steps": 3, "seed": 1}


@pytest.fixture(autouse=True)
def stop_workers(settings):
    """Never leave a worker behind, whatever a test did (workers run in their own session)."""
    yield
    store = JobStore(settings.db_path)
    for job in store.list():
        finetune_local.terminate(job, timeout=5)


def wait_for(store, job_id, check, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = store.get(job_id)
        if check(job):
            return job
        time.sleep(0.5)
    events = "\n".join(e.message for e in store.events(job_id))
    raise AssertionError(f"timed out; job is {store.get(job_id).status}:\n{events}")


def test_local_job_from_create_to_succeeded(settings, local_chat):
    store = JobStore(settings.db_path)
    job = finetune_local.start_job(store, style_records(4), style_records(2), TINY, suffix="style")
    assert job.pid and job.status == "validating_files"
    job = wait_for(store, job.id, lambda j: j.is_terminal)
    assert job.status == "succeeded", store.events(job.id)
    metrics = store.metrics(job.id)
    assert [m.step for m in metrics] == [1, 2, 3] and all(m.train_loss for m in metrics)
    assert metrics[1].valid_loss is not None and metrics[1].valid_token_accuracy is not None  # end of epoch 1
    assert [c.step for c in store.checkpoints(job.id)] == [2, 3]
    events = [e.message for e in store.events(job.id)]
    assert any(e.startswith("Step 3/3: training loss=") for e in events)
    assert events[-1].startswith("New fine-tuned model created: SmolLM2-135M-Instruct-style-")
    (model,) = list_tuned_models(settings.db_path)
    assert model.adapter_dir == job.adapter_dir and model.job_id == job.id
    assert finetune_local.reconcile(store) == []  # a finished job is left alone
    # the adapter answers through the chat chain's model factory
    from langchain_core.messages import HumanMessage

    from rag_ft.models.catalogue import available_models, chat_model_for

    choice = next(c for c in available_models(settings) if c.adapter_dir == model.adapter_dir)
    answer = chat_model_for(settings, choice, max_tokens=16).invoke([HumanMessage("What does rule 2 say?")])
    assert answer.content.strip()


def test_malformed_dataset_fails_validation_before_training(settings):
    store = JobStore(settings.db_path)
    bad = jsonl(style_records(2)) + b'{"messages": [{"role": "user", "content": "no answer"}]}\n'
    job = finetune_local.start_job(store, bad, hyperparameters=TINY)
    job = wait_for(store, job.id, lambda j: j.is_terminal, timeout=120)
    assert job.status == "failed" and job.error.code == "invalid_training_file"
    assert job.error.param == "training_file" and "line 3" in job.error.message
    assert store.metrics(job.id) == [] and job.started_at is None  # never reached "running"


def test_refused_when_memory_is_short(settings):
    store = JobStore(settings.db_path)
    with pytest.raises(finetune_local.LaunchRefused, match="GB of memory is free"):
        finetune_local.start_job(store, style_records(2), min_free_bytes=10**15)
    assert store.list() == []


def test_cancel_and_killed_worker_found_after_restart(settings):
    store = JobStore(settings.db_path)
    long = {"epochs": 200, "batch_size": 2, "seed": 0}
    a = finetune_local.start_job(store, style_records(4), hyperparameters=long)
    b = finetune_local.start_job(store, style_records(4), hyperparameters=long)
    wait_for(store, a.id, lambda j: j.step >= 1)
    job = finetune_local.cancel(store, a.id, wait_s=180)  # steps take 2-50 s depending on the CPU's load
    assert job.status == "cancelled" and job.step < job.total_steps
    # the worker saw the flag and stopped between steps (terminate is only the fallback)
    assert store.events(a.id)[-1].message.startswith("Cancelled at step"), store.events(a.id)[-1]
    assert not finetune_local.worker_alive(job)

    b = wait_for(store, b.id, lambda j: j.status == "running")
    os.kill(b.pid, signal.SIGKILL)  # the worker dies without a word
    finetune_local._children.clear()  # "restart": the new app process knows nothing but the database
    time.sleep(0.5)
    restarted = JobStore(settings.db_path)
    assert restarted.get(b.id).status == "running"
    assert finetune_local.reconcile(restarted) == [b.id]
    job = restarted.get(b.id)
    assert job.status == "failed" and job.error.code == "worker_lost" and f"pid {b.pid}" in job.error.message


def test_silent_worker_is_stopped_and_failed(settings):
    import subprocess
    import sys

    import psutil

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # alive but silent
    try:
        store = JobStore(settings.db_path)
        job = store.create_job("local", "m", style_records(2))
        store.update(job.id, pid=sleeper.pid, pid_started=psutil.Process(sleeper.pid).create_time(),
                     heartbeat_at=time.time() - 1000)
        assert finetune_local.reconcile(store) == [job.id]
        assert store.get(job.id).error.code == "worker_unresponsive"
        assert sleeper.wait(timeout=15) is not None  # it was stopped
    finally:
        sleeper.kill()
        sleeper.wait()
