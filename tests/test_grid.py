"""The Training data grid's engine: editor deltas become store changes once; filters; hold-out; import dedupe."""

from __future__ import annotations

import pytest

from rag_ft.training import grid
from rag_ft.training.examples import ExampleStore


def _msgs(q: str, a: str = "An answer.", system: str | None = "Be brief.") -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": q}, {"role": "assistant", "content": a}]


def _delta(**parts) -> dict:
    return {"edited_rows": {}, "added_rows": [], "deleted_rows": [], **parts}


@pytest.fixture
def store(settings) -> ExampleStore:
    s = ExampleStore(settings.db_path)
    yield s
    s.close()


def test_edits_save_once_and_never_undo_a_later_change(store):
    ids = [store.add(_msgs(f"Q{i}?")) for i in range(3)]
    state = grid.EditorState()
    delta = _delta(edited_rows={1: {"assistant": "Edited.", "status": "approved", "tags": "a, b"}})
    saved = grid.save_delta(store, ids, delta, state)
    assert saved.labels == [f"#{ids[1]} assistant", f"#{ids[1]} status = approved", f"#{ids[1]} tags"]
    assert saved.ids == [ids[1]] and not saved.errors and not saved.problems
    ex = store.get(ids[1])
    assert (ex.assistant, ex.status, ex.tags, ex.user) == ("Edited.", "approved", ["a", "b"], "Q1?")
    store.set_many([ids[1]], status="rejected")  # a bulk action after the edit
    again = grid.save_delta(store, ids, delta, state)  # the editor's delta is cumulative: same content again
    assert again.labels == [] and store.get(ids[1]).status == "rejected"
    # a new cell in the same row saves only that cell
    delta["edited_rows"][1]["user"] = "New question?"
    assert grid.save_delta(store, ids, delta, state).labels == [f"#{ids[1]} user"]
    assert store.get(ids[1]).status == "rejected"


def test_a_refused_row_is_named_and_the_others_still_save(store):
    ids = [store.add(_msgs("Q0?")), store.add(_msgs("Q1?"))]
    saved = grid.save_delta(store, ids, _delta(edited_rows={0: {"status": "maybe"}, 1: {"assistant": "Fine."}}),
                            grid.EditorState())
    assert len(saved.errors) == 1 and saved.errors[0].startswith(f"#{ids[0]}: Unknown status 'maybe'")
    assert store.get(ids[0]).status == "draft" and store.get(ids[1]).assistant == "Fine."
    assert saved.ids == [ids[1]]


def test_clearing_an_answer_is_saved_and_reported_as_a_problem(store):
    ids = [store.add(_msgs("Q?"))]
    saved = grid.save_delta(store, ids, _delta(edited_rows={0: {"assistant": None}}), grid.EditorState())
    assert store.get(ids[0]).assistant == ""
    assert saved.problems == {ids[0]: "message 3 (assistant) is empty"}


def test_added_row_becomes_one_example_and_later_edits_change_it(store):
    state = grid.EditorState()
    assert grid.save_delta(store, [], _delta(added_rows=[{"user": None}]), state).labels == []  # empty: wait
    saved = grid.save_delta(store, [], _delta(added_rows=[{"user": "New?", "assistant": "Yes."}]), state)
    [ex] = store.list()
    assert saved.labels == [f"#{ex.id} added"] and ex.messages == _msgs("New?", "Yes.", system=None)
    assert ex.source == "manual" and ex.status == "draft" and ex.split == "train"
    grid.save_delta(store, [], _delta(added_rows=[{"user": "New?", "assistant": "Better.", "status": "approved"}]),
                    state)
    [ex] = store.list()  # the same example, not a copy
    assert (ex.assistant, ex.status) == ("Better.", "approved")


def test_deleted_rows_are_soft_deleted_once(store):
    ids = [store.add(_msgs("Q0?")), store.add(_msgs("Q1?"))]
    state = grid.EditorState()
    assert grid.save_delta(store, ids, _delta(deleted_rows=[1]), state).labels == ["1 deleted"]
    assert store.get(ids[1]).deleted_at is not None and store.get(ids[0]).deleted_at is None
    store.restore([ids[1]])
    assert grid.save_delta(store, ids, _delta(deleted_rows=[1]), state).labels == []  # not deleted again
    assert store.get(ids[1]).deleted_at is None


def test_row_changes_only_what_differs(store):
    ex = store.get(store.add(_msgs("Q?", system=None), tags=["x"]))
    fields, labels = grid.row_changes(ex, {"user": "Q?", "status": "", "tags": " x ", "id": 99, "problem": "p",
                                           "system": "Sys"})
    assert labels == [f"#{ex.id} system"]
    assert fields == {"texts": {"system": "Sys"}}  # applied by the store to the row inside its transaction
    saved = store.update(ex.id, **fields)
    assert saved.messages == [{"role": "system", "content": "Sys"}, *_msgs("Q?", system=None)]


def test_build_filters_by_problem_and_stale(store):
    good = store.add(_msgs("Fine?"))
    warn = store.add(_msgs("No system?", system=None))
    bad = store.add([{"role": "user", "content": "no answer"}])
    gen = store.add(_msgs("From a chunk?"), source="generated", document="gone.md", chunk_hash="h1")
    rows = {f: grid.build(store, grid.Filters(problem=f), "SmolLM2-135M-Instruct").ids for f in grid.PROBLEM_FILTERS}
    assert rows["All"] == [good, warn, bad, gen]
    assert rows["No problem"] == [good] and rows["Errors"] == [bad] and rows["Warnings"] == [warn]
    assert rows["Stale"] == [gen] and rows["Any problem"] == [warn, bad, gen]
    shown = grid.build(store, grid.Filters(search="chunk"), "SmolLM2-135M-Instruct")
    [row] = shown.rows
    assert set(row) == set(grid.COLUMNS) and row["stale"] and row["problem"].startswith("stale:")
    assert row["tokens"] > 0 and shown.token_warning is None
    store.update(good, status="approved")
    assert grid.build(store, grid.Filters(status=("approved",)), "gpt-4o-mini-2024-07-18").ids == [good]
    with pytest.raises(ValueError, match="Unknown problem filter"):
        grid.shows("Some", set(), False)


def test_hold_out_moves_a_reproducible_fifth_in_one_go(store):
    from rag_ft.training.dataset import validation_ids

    ids = [store.add(_msgs(f"Q{i}?"), status="approved", split="validation" if i < 3 else "train") for i in range(10)]
    draft = store.add(_msgs("Draft?"), split="validation")
    held, kept = store.hold_out(0.2)
    assert held == validation_ids(ids, 0.2) and len(held) == 2 and sorted(held + kept) == ids
    assert {e.id for e in store.list(split="validation", status="approved")} == set(held)
    assert store.get(draft).split == "validation"  # only approved examples are re-split
    assert store.hold_out(0.2) == (held, kept)  # reproducible


def test_import_skips_what_the_store_has_with_the_validators_duplicate_rule(store):
    have = {"messages": [{"content": "Q?", "role": "user"}, {"role": "assistant", "content": "A."}]}
    store.add([{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}])
    new = {"messages": _msgs("Other?")}
    assert store.find_duplicates([new, have]) == [1]  # key order inside a message does not matter
    ids, skipped = store.import_records("f.jsonl", [new, have], [3, 7], skip_existing=True)
    assert skipped == 1 and len(ids) == 1
    ex = store.get(ids[0])
    assert (ex.source, ex.source_file, ex.source_line) == ("import", "f.jsonl", 3)
    assert store.import_records("f.jsonl", [have], [1])[1] == 0  # without skip_existing: all are added
    assert len(store.list()) == 3


def test_get_many_keeps_order_and_leaves_out_deleted(store):
    a, b, c = (store.add(_msgs(f"Q{i}?")) for i in range(3))
    store.delete(b)
    assert [e.id for e in store.get_many([c, b, a, 999])] == [c, a]
    assert [e.id for e in store.get_many([c, b], include_deleted=True)] == [c, b]
