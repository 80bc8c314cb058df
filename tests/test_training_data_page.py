"""The Training data page: AppTest drives the grid through session state; a real browser types into a cell,
reloads, restarts the app, and finds the edit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from html import unescape
from pathlib import Path

import pytest
from procs import free_port
from streamlit.testing.v1 import AppTest

from rag_ft.settings import load_settings
from rag_ft.training.examples import ExampleStore

APP = "../app.py"
PAGE = "pages/training_data.py"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clear_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield


def open_page(**secrets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in secrets.items():
        at.secrets[k] = v
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def grid(at: AppTest):
    return at.data_editor(key=at.session_state["td_grid_key"]).value


def edit_grid(at: AppTest, delta: dict) -> AppTest:
    full = {"edited_rows": {}, "added_rows": [], "deleted_rows": []}
    full.update(delta)
    at.session_state[at.session_state["td_grid_key"]] = full
    at.run()
    assert not at.exception, at.exception
    return at


def store(data_dir) -> ExampleStore:
    return ExampleStore(load_settings(env={"RAG_FT_DATA_DIR": str(data_dir)}).db_path)


def test_new_user_flow_sample_search_fix_approve_estimate_export(data_dir):
    at = open_page()
    assert metrics(at)["Draft"] == "0"
    assert "Index documents first" in at.info[0].value
    at.button(key="td_sample").click().run()
    assert metrics(at)["Draft"] == "64" and "Imported 64 example(s) from sample_dataset.jsonl" in unescape(at.success[0].value)
    at.button(key="td_sample").click().run()  # twice: nothing doubles
    assert metrics(at)["Draft"] == "64"

    # a bad example sneaks in (from a chat answer with no answer text)
    bad = store(data_dir).add([{"role": "user", "content": "Wie lange gilt der Link?"}], source="chat")
    at.button(key="td_refresh").click().run()
    at.text_input(key="td_search").set_value("wie lange").run()
    df = grid(at)
    assert df["id"].tolist() == [bad] and "no assistant message" in df["problem"][0]
    edit_grid(at, {"edited_rows": {0: {"assistant": "Der Link gilt 24 Stunden. [Source: account-management-guide.pdf, Section 1]"}}})
    assert store(data_dir).get(bad).assistant.startswith("Der Link gilt 24 Stunden")
    at.button(key="td_refresh").click().run()
    assert grid(at)["problem"][0] == "no system message"  # only a warning now

    # approve everything shown, with one click
    at.text_input(key="td_search").set_value("").run()
    assert len(grid(at)) == 65
    at.button(key="td_bulk_Approve").click().run()
    assert metrics(at)["Approved"] == "65" and metrics(at)["Draft"] == "0"
    at.button(key="td_holdout").click().run()
    assert metrics(at)["Validation"] == "13" and metrics(at)["Train"] == "52"

    # estimate for an OpenAI model
    at.selectbox(key="td_model").set_value("gpt-4o-mini-2024-07-18").run()
    m = metrics(at)
    assert m["Approved training examples"] == "52" and m["Epochs"] == "3"
    assert m["Estimated cost"].startswith("$") and int(m["Tokens per epoch"].replace(",", "")) > 52 * 50
    assert not at.error
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["train.jsonl (52)", "validation.jsonl (13)"]
    # the local model: time instead of cost
    at.selectbox(key="td_model").set_value("SmolLM2-135M-Instruct").run()
    assert metrics(at)["Estimated CPU time"].endswith("min")


def test_grid_edit_survives_reload_and_restart(data_dir):
    s = store(data_dir)
    ids = [s.add([{"role": "system", "content": "S"}, {"role": "user", "content": f"Q{i}?"},
                  {"role": "assistant", "content": f"A{i}."}]) for i in range(3)]
    at = open_page()
    assert grid(at)["id"].tolist() == ids
    edit_grid(at, {"edited_rows": {1: {"assistant": "Edited answer.", "status": "approved", "tags": "fixed, billing"}}})
    key = at.session_state["td_grid_key"]
    at.run()  # further reruns do not re-save or reset the editor
    assert at.session_state["td_grid_key"] == key
    assert metrics(at)["Approved"] == "1"
    # a bulk action after the edit is not undone by the editor's remembered delta
    at.button(key="td_bulk_Reject").click().run()
    assert metrics(at)["Rejected"] == "3" and s.get(ids[1]).status == "rejected"
    s.update(ids[1], status="approved")
    # a reload is a new session
    again = open_page()
    row = grid(again).set_index("id").loc[ids[1]]
    assert (row["assistant"], row["status"], row["tags"]) == ("Edited answer.", "approved", "fixed, billing")
    # an app restart: a new store on the same file
    s.close()
    ex = store(data_dir).get(ids[1])
    assert ex.assistant == "Edited answer." and ex.tags == ["fixed", "billing"]


def test_added_and_deleted_rows_and_restore(data_dir):
    s = store(data_dir)
    first = s.add([{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}])
    at = open_page()
    edit_grid(at, {"added_rows": [{"user": "New question?", "assistant": "New answer."}], "deleted_rows": [0]})
    assert s.get(first).deleted_at is not None
    added = s.list(search="new question")
    assert len(added) == 1 and added[0].assistant == "New answer." and added[0].source == "manual"
    edit_grid(at, {"added_rows": [{"user": "New question?", "assistant": "Better answer."}], "deleted_rows": [0]})
    assert [e.assistant for e in s.list(search="new question")] == ["Better answer."]  # same row, not a copy
    assert metrics(at)["Deleted"] == "1"
    at.button(key="td_restore").click().run()
    assert s.get(first).deleted_at is None and "Restored 1" in unescape(at.success[0].value)


def test_bulk_delete_acts_on_filtered_rows_only(data_dir):
    s = store(data_dir)
    keep = s.add([{"role": "user", "content": "About billing?"}, {"role": "assistant", "content": "Yes."}])
    drop = s.add([{"role": "user", "content": "About SSO?"}, {"role": "assistant", "content": "Yes."}])
    at = open_page()
    at.text_input(key="td_search").set_value("sso").run()
    at.button(key="td_bulk_delete").click().run()
    assert s.get(drop).deleted_at is not None and s.get(keep).deleted_at is None
    at.text_input(key="td_search").set_value("billing").run()
    edit_grid(at, {"edited_rows": {0: {"assistant": ""}}})  # clearing an answer is saved, and flagged at once
    assert f"#{keep} still has a problem: message 2 (assistant) is empty" in [unescape(t.value) for t in at.toast]
    at.multiselect(key="td_status").set_value(["approved"]).run()
    at.text_input(key="td_search").set_value("").run()
    assert len(grid(at)) == 0
    at.switch_page("pages/home.py").run()
    at.switch_page(PAGE).run()  # back again: the filters are where the user left them
    assert at.multiselect(key="td_status").value == ["approved"] and len(grid(at)) == 0
    assert not at.warning and not at.exception


def test_import_lists_bad_lines_by_number(data_dir):
    good = json.dumps({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]})
    data = f"{good}\n{{broken\n{good}\n{json.dumps({'messages': [{'role': 'bot', 'content': 'x'}]})}\n".encode()
    at = open_page()
    at.file_uploader(key="td_upload").set_value(("mine.jsonl", data, "application/jsonl"))
    at.run()
    at.button(key="td_import").click().run()
    assert unescape(at.warning[0].value) == ("Imported 2 example(s) from mine.jsonl as drafts (only approved examples "
                                             "train: review and approve them); 2 line(s) had problems:")
    text = at.code[0].value
    assert "line 2: not valid JSON" in text and "line 4: message 1 has unknown role 'bot'" in text
    assert [e.source_line for e in store(data_dir).list()] == [1, 3]
    assert store(data_dir).list()[0].source_label == "import: mine.jsonl line 1"


def test_filter_by_problem_and_detail_editor_for_multi_turn(data_dir):
    s = store(data_dir)
    ok = s.add([{"role": "system", "content": "S"}, {"role": "user", "content": "u1"},
                {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"},
                {"role": "assistant", "content": "a2"}])
    s.add([{"role": "user", "content": "no answer"}])
    at = open_page()
    at.selectbox(key="td_problem").set_value("Errors").run()
    assert grid(at)["user"].tolist() == ["no answer"]
    at.selectbox(key="td_problem").set_value("No problem").run()
    df = grid(at)
    assert df["id"].tolist() == [ok] and df["turns"][0] == 2 and df["assistant"][0] == "a2"
    # the detail editor edits any turn
    at.selectbox(key="td_pick").set_value(ok).run()
    detail = [d for d in at.data_editor if d.key and d.key.startswith(f"td_detail_{ok}_")][0]
    at.session_state[detail.key] = {"edited_rows": {2: {"content": "A1 fixed"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    at.text_input(key=f"td_tags_{ok}").set_value("multi").run()
    at.button(key="td_detail_save").click().run()
    ex = s.get(ok)
    assert [m["content"] for m in ex.messages] == ["S", "u1", "A1 fixed", "u2", "a2"] and ex.tags == ["multi"]


@pytest.mark.slow
def test_generate_from_documents_on_the_page(data_dir, local_chat):
    from rag_ft.db import connect

    conn = connect(load_settings(env={"RAG_FT_DATA_DIR": str(data_dir)}).db_path)
    # an indexed document with one chunk (connect created the tables); only 'indexed' documents are offered
    conn.execute("INSERT INTO documents (id, collection, name, status) VALUES ('d1', 'default', 'billing-faq.docx', "
                 "'indexed')")
    conn.execute("INSERT INTO chunks VALUES ('c1','d1','default','billing-faq.docx',0,'h1',"
                 "'Is there a free trial? Yes. The Team plan has a 14-day free trial, and no credit card is required.',"
                 "'[]','Is there a free trial?','[]')")
    at = open_page(RAG_FT_PROVIDER="local")
    at.multiselect(key="td_gen_docs").set_value([("default", "billing-faq.docx")]).run()
    at.button(key="td_gen_go").click().run()
    assert not at.exception, at.exception
    [ex] = store(data_dir).list(source="generated")
    assert ex.document == "billing-faq.docx" and ex.chunk_hash == "h1" and ex.status == "draft"
    assert ex.assistant.endswith("[Source: billing-faq.docx, Section Is there a free trial?]")
    assert "1 draft(s) written" in unescape(at.success[0].value)
    conn.execute("UPDATE chunks SET hash = 'h2'")
    at.button(key="td_refresh").click().run()
    at.selectbox(key="td_problem").set_value("Stale").run()
    assert grid(at)["stale"].tolist() == [True] and "stale" in grid(at)["problem"][0]


# ---- real browser --------------------------------------------------------------------------------------


class Server:
    """A `streamlit run app.py` that the test can stop and start again on the same data folder."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.proc: subprocess.Popen | None = None
        self.base = ""

    def start(self) -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_FT_"))}
        env.update(RAG_FT_DATA_DIR=str(self.data), RAG_FT_PROVIDER="local")
        self.log = open(self.data.parent / f"server-{port}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2).read() == b"ok":
                    return self.base
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("streamlit did not start")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.log.close()
            self.proc = None


@pytest.fixture
def own_server(tmp_path, chromium):
    server = Server(tmp_path / "data")
    server.start()
    yield server
    server.stop()


@pytest.mark.browser
def test_typing_into_a_cell_survives_reload_and_restart(browser, own_server):
    from playwright.sync_api import expect
    from ui import goto_page, wait_idle

    expect.set_options(timeout=60_000)  # 2 shared cores: the first run of a page can take a while
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    def open_page() -> None:
        # through app.py's router (a fresh server opened at /training_data would run the page alone)
        page.goto(own_server.base)
        expect(page.get_by_role("heading", name="RAG + Fine-Tuning Studio")).to_be_visible()
        wait_idle(page)
        goto_page(page, "Training data", "training_data")
        expect(page.get_by_role("heading", name="Training data")).to_be_visible()

    try:
        open_page()
        page.get_by_role("button", name="Import sample dataset").click()
        expect(page.get_by_text("Imported 64 example(s)")).to_be_visible()
        wait_idle(page)

        def search(term: str) -> None:
            box = page.get_by_label("Search all text")
            box.fill(term)
            box.press("Enter")
            expect(page.get_by_test_id("stDataFrame").first.get_by_test_id("glide-cell-5-1")).to_have_count(0)
            wait_idle(page)

        search("paypal")
        grid = page.get_by_test_id("stDataFrame").first
        cell = lambda c, r: grid.get_by_test_id(f"glide-cell-{c}-{r}")  # noqa: E731  (col 0 = row marker)
        expect(cell(5, 0)).to_have_text("Can I pay with PayPal?")
        grid.click(position={"x": 60, "y": 35 + 17})  # the ID cell of row 0
        for _ in range(5):  # ID -> status -> split -> system -> user -> assistant
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        editor = page.get_by_test_id("portal").locator(".gdg-clip-region textarea, .gdg-clip-region input").first
        new = "Yes, PayPal works too. [Source: billing-faq.docx, Section 3]"
        editor.fill(new)
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("stToast").filter(has_text="Saved")).to_be_visible()
        wait_idle(page)
        [ex] = ExampleStore(own_server.data / "studio.sqlite3").list(search="paypal")
        assert ex.assistant == new  # on disk as soon as it was typed

        page.reload()  # closes the session: a new one starts
        expect(page.get_by_role("heading", name="Training data")).to_be_visible()
        wait_idle(page)
        search("paypal")
        expect(page.get_by_test_id("stDataFrame").first.get_by_test_id("glide-cell-6-0")).to_have_text(new)

        own_server.stop()
        own_server.start()  # the app restarts on the same data folder
        open_page()
        search("paypal")
        expect(page.get_by_test_id("stDataFrame").first.get_by_test_id("glide-cell-6-0")).to_have_text(new)
        expect(page.get_by_test_id("stSidebar")).to_contain_text("local")  # the app's own sidebar, not bare pages

        # approve what is shown with one click, then download train.jsonl
        page.get_by_role("button", name="Approve 1 shown").click()
        expect(page.get_by_text("Approve: 1 example(s) changed.")).to_be_visible()
        wait_idle(page)
        with page.expect_download() as dl:
            page.get_by_role("button", name="train.jsonl (1)").click()
        lines = Path(dl.value.path()).read_text(encoding="utf-8").splitlines()
        assert [json.loads(x)["messages"][-1]["content"] for x in lines] == [new]
        expect(page.get_by_test_id("stException")).to_have_count(0)
    finally:
        page.screenshot(path=str(own_server.data.parent / "training_data.png"), full_page=True)
        ctx.close()


# ---- issue #13: only approved examples train; histogram order; how long generating takes -----------------
def test_sample_import_explains_approval_and_import_and_approve(data_dir):
    at = open_page()
    at.button(key="td_sample").click().run()  # drafts: the check says 0 valid, and now also why
    assert "as drafts (only approved examples train" in unescape(at.success[0].value)
    assert any("0 valid example(s)" in unescape(e.value) for e in at.error)
    assert any(i.value.startswith("Only approved examples train. 64 draft(s) are waiting") for i in at.info)
    store(data_dir).delete([e.id for e in store(data_dir).list()])
    at.button(key="td_sample_approve").click().run()
    assert metrics(at)["Approved"] == "64" and metrics(at)["Draft"] == "0"
    assert "; 64 approved." in unescape(at.success[0].value)
    assert not any(i.value.startswith("Only approved") for i in at.info)
    assert "64 approved training examples pass" in " ".join(s.value for s in at.success)


def test_import_and_approve_approves_what_imports(data_dir):
    good = json.dumps({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]})
    broken = json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
    at = open_page()
    at.file_uploader(key="td_upload").set_value(("mine.jsonl", f"{good}\n{broken}\n".encode(), "application/jsonl"))
    at.run()
    at.button(key="td_import_approve").click().run()
    assert [(e.user, e.status) for e in store(data_dir).list()] == [("Q?", "approved")]
    assert unescape(at.warning[0].value) == "Imported 1 example(s) from mine.jsonl; 1 approved; 1 line(s) had problems:"
    assert "line 2: no assistant message" in at.code[0].value


def test_histogram_bins_keep_numeric_order_in_the_chart(data_dir):
    import pyarrow as pa

    from rag_ft.training import grid as grid_mod

    frame = grid_mod.histogram_frame([95, 96, 99, 100, 104, None, 150])
    labels = list(frame.index)
    assert [int(x.split("-")[0]) for x in labels] == sorted(int(x.split("-")[0]) for x in labels)
    assert labels != sorted(labels) and frame.index.ordered  # as text, "100-..." would come before "95-..."
    assert frame["examples"].sum() == 6
    s = store(data_dir)
    for n in (3, 40, 120, 400):  # examples of very different lengths: bins from two to three digits
        s.add([{"role": "user", "content": "q " * n + "?"}, {"role": "assistant", "content": "A."}],
              status="approved")
    at = open_page()
    at.selectbox(key="td_model").set_value("SmolLM2-135M-Instruct").run()
    [chart] = [e for e in at.main if getattr(e, "type", "") == "vega_lite_chart"]
    spec = json.loads(chart.proto.spec)
    assert spec["encoding"]["x"]["field"] == "tokens" and spec["encoding"]["x"]["sort"] is None  # data order
    shown = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()["tokens"].tolist()
    starts = [int(x.split("-")[0]) for x in shown]
    assert starts == sorted(starts) and shown != sorted(shown)


def test_generation_estimate_default_then_measured(data_dir):
    from rag_ft.db import connect
    from rag_ft.training import generate

    s = store(data_dir)
    assert generate.seconds_per_chunk(s, "SmolLM2", local=True) == (
        generate.LOCAL_SECONDS_PER_CHUNK, "the local model's pace on 2 CPU cores, including its loading")
    assert generate.seconds_per_chunk(s, "gpt-4o-mini", local=False)[0] == generate.REMOTE_SECONDS_PER_CHUNK
    assert generate.format_problem("{answer} [{document}]") is None
    assert "unknown placeholder" in generate.format_problem("{answer} {page}")
    conn = connect(load_settings(env={"RAG_FT_DATA_DIR": str(data_dir)}).db_path)
    conn.execute("INSERT INTO documents (id, collection, name, status) VALUES ('d1', 'default', 'faq.md', 'indexed')")
    for i in range(3):
        conn.execute("INSERT INTO chunks VALUES (?, 'd1', 'default', 'faq.md', ?, ?, 'Text.', '[]', 'FAQ', '[]')",
                     (f"c{i}", i, f"h{i}"))
    at = open_page(RAG_FT_PROVIDER="local")
    model = load_settings(env={"RAG_FT_DATA_DIR": str(data_dir), "RAG_FT_PROVIDER": "local"}).chat_model_name
    at.multiselect(key="td_gen_docs").set_value([("default", "faq.md")]).run()
    assert any(i.value.startswith("3 chunk(s) at about 44 s each (the local model's pace") and "about 2 min." in i.value
               for i in at.info)
    # drafts a run saved 6 s apart, and one from an older run an hour before: 6 s per chunk, measured here
    for t in ("2026-01-01T09:00:00.000+00:00", "2026-01-01T10:00:00.000+00:00", "2026-01-01T10:00:06.000+00:00",
              "2026-01-01T10:00:12.000+00:00"):
        i = s.add([{"role": "user", "content": "q?"}], source="generated", notes=f"Generated by {model}.")
        s.conn.execute("UPDATE examples SET created_at = ? WHERE id = ?", (t, i))
    s.conn.commit()
    assert generate.seconds_per_chunk(s, model, local=True) == (6.0, "measured on this computer over 3 drafts")
    at.number_input(key="td_gen_limit").set_value(2).run()
    assert any(i.value.startswith("2 chunk(s) at about 6 s each (measured on this computer") for i in at.info)
