"""The Fine-tuning page: AppTest for the form, dialog, OpenAI flows and job view; a real browser for a local job."""

import subprocess
import sys
import time
from html import unescape

import psutil
import pytest
from fake_openai import GOOD_KEY
from fake_openai_ft import install
from ft_fixtures import jsonl, style_records
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest
from ui import goto_page, wait_idle

from rag_ft.training.jobs import JobStore, Metric

APP = "../app.py"
PAGE = "pages/fine_tuning.py"


@pytest.fixture(autouse=True)
def clear_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield


def open_page(secrets=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    for k, v in (secrets or {}).items():
        at.secrets[k] = v
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    """Every message on the page as the reader sees it (untrusted parts are character references in the source)."""
    return unescape(" ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.error, *at.info, *at.warning,
                                                    *at.success]))


def test_empty_page_and_bad_upload_named():
    at = open_page()
    assert "No fine-tuning jobs yet" in texts(at)
    assert at.button(key="ft_review").disabled  # no approved examples yet
    assert "No approved training examples yet" in texts(at)
    at.radio(key="ft_source").set_value("upload").run()
    bad = jsonl(style_records(1)) + b"{broken\n"
    at.file_uploader(key="ft_train_file").set_value(("mine.jsonl", bad, "application/jsonl")).run()
    assert any("mine.jsonl line 2: not valid JSON" in unescape(e.value) for e in at.error)
    assert at.button(key="ft_review").disabled


def launch_openai(at: AppTest, records: list[dict]) -> None:
    at.radio(key="ft_backend").set_value("openai").run()
    at.radio(key="ft_source").set_value("upload").run()
    at.file_uploader(key="ft_train_file").set_value(("t.jsonl", jsonl(records), "application/jsonl")).run()
    at.number_input(key="ft_epochs").set_value(1).run()
    at.number_input(key="ft_batch").set_value(2).run()
    assert "training tokens" in texts(at)  # the estimate
    at.button(key="ft_review").click().run()
    at.button(key="ft_confirm").click().run()
    assert not at.exception, at.exception


def test_openai_job_launched_watched_and_opened_in_chat(fake_openai):
    install(fake_openai)
    at = open_page({"OPENAI_API_KEY": GOOD_KEY, "OPENAI_BASE_URL": fake_openai.base_url})
    launch_openai(at, style_records(4))
    for _ in range(6):  # run_every does not tick in AppTest: each run is one poll
        at.run()
        if at.dataframe[0].value.loc[0, "status"].endswith("succeeded"):
            break
    table = at.dataframe[0].value
    assert table.loc[0, "status"] == "🟢 succeeded" and table.loc[0, "model"].startswith("ft:gpt-4o-mini")
    assert at.get("vega_lite_chart"), "no loss chart"
    events = at.dataframe[1].value["message"].tolist()
    assert "The job has successfully completed" in events
    at.button(key="ft_chat").click().run()
    assert at.session_state["chat_model"] == table.loc[0, "model"]
    assert at.session_state["chat_model_pick"] == table.loc[0, "model"]  # the chat page picked it


def test_openai_permission_denied_explained(fake_openai):
    install(fake_openai).state["ft_deny"] = True
    at = open_page({"OPENAI_API_KEY": GOOD_KEY, "OPENAI_BASE_URL": fake_openai.base_url})
    launch_openai(at, style_records(4))
    assert any("denied access to fine-tuning" in unescape(e.value) for e in at.error)  # OpenAI's message
    assert any("2027-01-06" in unescape(i.value) and "May 2026" in unescape(i.value) for i in at.info)  # our words


def test_local_job_view_overfitting_hint_cancel_and_chat(settings, tmp_path):
    store = JobStore(settings.db_path)
    done = store.create_job("local", "SmolLM2-135M-Instruct", style_records(4), style_records(2), {"epochs": 3})
    for step, (tl, vl) in enumerate([(2.0, 1.9), (1.2, 1.5), (0.6, 1.7), (0.2, 2.1)], 1):
        store.add_metric(done.id, Metric(step, step / 2, tl, None, vl, 0.5))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    store.register_model(done.id, "SmolLM2-135M-Instruct-style-x", adapter_dir=str(adapter))
    store.set_status(done.id, "succeeded")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        running = store.create_job("local", "SmolLM2-135M-Instruct", style_records(4))
        store.update(running.id, pid=sleeper.pid, pid_started=psutil.Process(sleeper.pid).create_time(),
                     heartbeat_at=time.time() + 3600, step=1, total_steps=10, estimated_finish=time.time() + 30)
        store.set_status(running.id, "running")
        at = open_page()
        assert at.selectbox(key="ft_job_pick").value == running.id  # newest first
        assert "step 1/10" in at.get("progress")[0].proto.text
        at.button(key="ft_cancel").click().run()
        assert store.cancel_requested(running.id)
        at.selectbox(key="ft_job_pick").set_value(done.id).run()
        assert any("may be overfitting" in w.value and "step 2" in w.value for w in at.warning)
        # the export zip is built only when clicked (deferred): the page shows the button and the endpoint to paste
        assert at.get("download_button")[0].proto.label == "Export for vLLM / Ollama / llama.cpp (zip)"
        assert any('[endpoints.ollama]' in c.value and '"smollm2-135m-instruct-style-x:latest"' in c.value
                   and "secrets.toml" in c.value for c in at.code)
        at.button(key="ft_chat").click().run()
        assert at.session_state["chat_model"] == "SmolLM2-135M-Instruct-style-x (LoRA)"
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.browser
@pytest.mark.slow
def test_browser_local_job_reaches_succeeded_without_clicks(page, app_server):
    base, _ = app_server
    page.goto(base)
    goto_page(page, "Fine-tuning", "fine_tuning")
    page.get_by_text("Upload JSONL").click()
    expect(page.get_by_text("Training JSONL", exact=True)).to_be_visible()
    page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(
        files=[{"name": "tiny.jsonl", "mimeType": "application/jsonl", "buffer": jsonl(style_records(4))}])
    # the first estimate loads the tokenizer: slow on a busy CPU
    expect(page.get_by_text("Estimate:")).to_be_visible(timeout=120_000)
    for label, value in (("Epochs", "1"), ("Batch size", "2"), ("Stop after steps (0 = all)", "2")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        expect(box).to_have_value(value)
        wait_idle(page)
    page.get_by_role("button", name="Review and launch").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("max_steps=2")
    dialog.get_by_role("button", name="Launch").click()
    table = page.get_by_test_id("stDataFrame").first
    # no clicks from here: the fragment refreshes every 2 s
    expect(table.get_by_test_id("glide-cell-0-0")).to_contain_text("succeeded", timeout=300_000)
    expect(page.get_by_role("button", name="Chat with this model")).to_be_visible()
    expect(page.locator("[data-testid=stVegaLiteChart], [data-testid=stArrowVegaLiteChart]").first).to_be_visible()


# ---- issue #13: the estimate counts model loading, measured here; finished workers are reaped ----------------
def test_estimate_includes_startup_measured_from_the_last_job(settings):
    from rag_ft.settings import LOCAL_CHAT_MODEL
    from rag_ft.training import estimates
    from rag_ft.training.examples import ExampleStore
    from rag_ft.untrusted import inert

    examples = ExampleStore(settings.db_path)
    for r in style_records(8):
        examples.add(r["messages"], status="approved")
    at = open_page()  # nothing measured yet: the documented defaults, named
    [info] = [i.value for i in at.info if i.value.startswith("Estimate:")]
    assert inert(f"{estimates.LOAD_SECONDS:.0f} s to start and load the model + 6 x ") in info
    assert inert(f"from {estimates.DEFAULT_RATE.source}") in info

    store = JobStore(settings.db_path)
    job = store.create_job("local", LOCAL_CHAT_MODEL, style_records(8), None, {"epochs": 3, "batch_size": 4})
    created = store.get(job.id).created_at
    for step in (1, 2, 3):  # step 1 began 50 s after the job was created; each step took 3 s
        store.add_metric(job.id, Metric(step, step / 2, 1.0))
        store.conn.execute("UPDATE ft_metrics SET created_at = ? WHERE job_id = ? AND step = ?",
                           (created + 50 + 3 * step, job.id, step))
    store.update(job.id, trained_tokens=estimates.local_estimate(style_records(8), 3, 4).training_tokens)
    store.set_status(job.id, "succeeded")
    rate = estimates.measured_rate(store)
    assert rate.startup == pytest.approx(50.0) and rate.seconds == pytest.approx(3.0)
    est = estimates.local_estimate(style_records(8), 3, 4, rate=rate)
    assert est.seconds == pytest.approx(50 + 6 * 3.0)  # the same examples and batch: the measured pace
    at = open_page()
    [info] = [i.value for i in at.info if i.value.startswith("Estimate:")]
    assert inert("6 steps, about 1.1 min at this computer's measured pace") in info
    assert inert(f"50 s to start and load the model + 6 x 3.0 s per step, from this computer's pace in job {job.id}") in info


def test_finished_worker_is_reaped_not_left_a_zombie(settings):
    from rag_ft.training.backends import local as finetune_local

    store = JobStore(settings.db_path)
    bad = jsonl(style_records(1)) + b"{broken\n"  # the worker fails its file check and exits at once
    job = finetune_local.start_job(store, bad, hyperparameters={"epochs": 1}, min_free_bytes=1)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if psutil.Process(job.pid).status() == psutil.STATUS_ZOMBIE:  # exited, nobody collected it yet
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    assert store.get(job.id).status == "failed"
    open_page()  # showing the jobs reconciles them
    zombies = [c.pid for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]
    assert job.pid not in zombies and zombies == []


# ---- issue #14: the form comes from each backend's parameter description; hosted backends ----------------------
def test_form_is_built_from_each_backends_parameters(settings):
    from rag_ft.training.backends import registry

    at = open_page()
    for backend in registry.offered(settings):
        at.radio(key="ft_backend").set_value(backend.name).run()
        assert not at.exception, at.exception
        for p in backend.available_parameters():
            widget = {"int": at.number_input, "float": at.number_input, "choice": at.selectbox,
                      "bool": at.toggle, "auto_float": at.text_input}[p.type](key=p.widget_key)
            assert widget.label == p.label
    at.radio(key="ft_backend").set_value("fireworks").run()  # no key: said so, nothing can start
    assert "Set FIREWORKS_API_KEY and FIREWORKS_ACCOUNT_ID" in texts(at)
    assert at.button(key="ft_review").disabled


def test_together_job_launched_from_the_form_and_watched(server_together):
    from fake_openai import GOOD_KEY as KEY

    at = open_page({"TOGETHER_API_KEY": KEY, "TOGETHER_BASE_URL": server_together.base_url})
    at.radio(key="ft_backend").set_value("together").run()
    assert "OpenAI (new jobs until 2027-01-06)" in at.radio(key="ft_backend").options  # labelled with its end
    at.radio(key="ft_source").set_value("upload").run()
    at.file_uploader(key="ft_train_file").set_value(("t.jsonl", jsonl(style_records(4)), "application/jsonl")).run()
    assert at.number_input(key="ft_batch").min == 8  # Together's minimum batch, from its description
    at.number_input(key="ft_batch").set_value(8).run()
    at.selectbox(key="ft_rank").set_value(16).run()
    at.button(key="ft_review").click().run()
    at.button(key="ft_confirm").click().run()
    assert not at.exception, at.exception
    [sent] = [j["_request"] for j in server_together.state["tg_jobs"].values()]
    assert sent["lora_r"] == 16 and sent["batch_size"] == 8 and sent["lora"] is True
    for _ in range(10):
        at.run()
        if at.dataframe[0].value.loc[0, "status"].endswith("succeeded"):
            break
    table = at.dataframe[0].value
    assert table.loc[0, "status"] == "🟢 succeeded" and table.loc[0, "backend"] == "together"
    assert table.loc[0, "model"].startswith("fakeuser/")
    assert "Together AI status: completed." in at.dataframe[1].value["message"].tolist()


@pytest.fixture
def server_together():
    from fake_openai import FakeOpenAI
    from fake_together import install as install_together

    fake = install_together(FakeOpenAI().start())
    yield fake
    fake.stop()
