"""The example store: real SQLite in the test's data folder; edits persist across connections; soft delete."""

import pytest

from rag_ft.records import Passage
from rag_ft.training.examples import ExampleError, ExampleStore


def _msgs(q="How do I reset the hub?", a="Hold the button for 10 s. [Source: manual.md, Section 2.1]"):
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q},
            {"role": "assistant", "content": a}]


def test_add_get_update_persist_across_connections(settings):
    store = ExampleStore(settings.db_path)
    i = store.add(_msgs(), tags="setup, hub", notes="first", source="import", source_file="a.jsonl", source_line=3)
    ex = store.get(i)
    assert ex.messages == _msgs() and ex.tags == ["setup", "hub"] and ex.status == "draft" and ex.split == "train"
    assert ex.record() == {"messages": _msgs()}
    assert ex.source_label == "import: a.jsonl line 3"
    store.update(i, status="approved", split="validation", notes="checked")
    store.set_text(i, "assistant", "New answer.")
    store.close()
    again = ExampleStore(settings.db_path).get(i)  # a fresh connection: the edit is on disk
    assert (again.status, again.split, again.notes, again.assistant) == ("approved", "validation", "checked", "New answer.")
    assert again.updated_at >= again.created_at


def test_set_text_adds_missing_roles(settings):
    store = ExampleStore(settings.db_path)
    i = store.add([{"role": "user", "content": "q"}])
    store.set_text(i, "system", "sys")
    store.set_text(i, "assistant", "a")
    assert [m["role"] for m in store.get(i).messages] == ["system", "user", "assistant"]


def test_set_text_multi_turn_edits_first_user_and_last_assistant(settings):
    store = ExampleStore(settings.db_path)
    msgs = [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "u2"}, {"role": "assistant", "content": "a2"}]
    i = store.add(msgs)
    ex = store.get(i)
    assert (ex.user, ex.assistant, ex.turns) == ("u1", "a2", 2)
    store.set_text(i, "assistant", "A2")
    assert [m["content"] for m in store.get(i).messages] == ["u1", "a1", "u2", "A2"]


def test_list_filters_and_search(settings):
    store = ExampleStore(settings.db_path)
    a = store.add(_msgs(q="Where is the 100% refund_policy?"), status="approved")
    b = store.add(_msgs(q="Battery life?"), split="validation", tags=["power"])
    c = store.add(_msgs(q="Pairing"), source="chat")
    assert [e.id for e in store.list(status="approved")] == [a]
    assert [e.id for e in store.list(split="validation")] == [b]
    assert [e.id for e in store.list(source=["chat"])] == [c]
    assert [e.id for e in store.list(search="REFUND_POLICY")] == [a]  # case-insensitive, '_' literal
    assert [e.id for e in store.list(search="100%")] == [a]  # '%' literal, not a wildcard
    assert [e.id for e in store.list(search="power")] == [b]  # tags are searched
    assert len(store.list(search="hold the button")) == 3  # answers are searched


def test_soft_delete_and_restore(settings):
    store = ExampleStore(settings.db_path)
    ids = [store.add(_msgs(q=f"q{i}")) for i in range(3)]
    assert store.delete(ids[:2]) == 2
    assert [e.id for e in store.list()] == [ids[2]]
    assert [e.id for e in store.list(deleted_only=True)] == ids[:2]
    assert store.counts()["deleted"] == 2 and store.counts()["total"] == 1
    assert store.restore([ids[0]]) == 1
    assert [e.id for e in store.list()] == [ids[0], ids[2]]


def test_bulk_and_counts(settings):
    store = ExampleStore(settings.db_path)
    ids = [store.add(_msgs(q=f"q{i}")) for i in range(5)]
    assert store.set_many(ids[:3], status="approved") == 3
    store.set_many(ids[:1], split="validation")
    c = store.counts()
    assert c["status"] == {"draft": 2, "approved": 3, "rejected": 0}
    assert c["split"] == {"train": 4, "validation": 1} and c["approved"] == {"train": 2, "validation": 1}
    with pytest.raises(ExampleError):
        store.set_many(ids, status="done")


def test_bad_values_are_refused_with_a_reason(settings):
    store = ExampleStore(settings.db_path)
    with pytest.raises(ExampleError, match="Unknown status 'ok'"):
        store.add(_msgs(), status="ok")
    i = store.add(_msgs())
    with pytest.raises(ExampleError, match="Unknown split"):
        store.update(i, split="test")
    with pytest.raises(ExampleError, match="No example with id 999"):
        store.update(999, status="approved")
    assert store.get(i).split == "train"  # the refused edit changed nothing


def test_failed_bulk_import_writes_nothing(settings):
    store = ExampleStore(settings.db_path)
    with pytest.raises(ExampleError):
        store.add_many([{"messages": _msgs()}, {"messages": _msgs(), "status": "bogus"}])
    assert store.list() == []  # one transaction: all or nothing


def test_add_from_chat_with_and_without_passages(settings):
    store = ExampleStore(settings.db_path)
    p = Passage(text="Hold the reset button for 10 seconds.", document="manual.md", pages=[2], section="2.1 Reset",
                chunk_index=0, score=0.9)
    i = store.add_from_chat("How do I reset?", "Hold it 10 s [1].", [p])
    ex = store.get(i)
    assert ex.source == "chat" and ex.status == "draft"
    # the question as typed, not the RAG prompt; the passages are named in the notes for the reviewer
    assert ex.messages == [{"role": "user", "content": "How do I reset?"},
                           {"role": "assistant", "content": "Hold it 10 s [1]."}]
    assert "manual.md, p. 2, 2.1 Reset" in ex.notes and ex.document == "manual.md"
    k = store.add_from_chat("How do I reset?", "Unplug it.", [p], notes="Thumbs down: wrong button")
    assert store.get(k).notes.startswith("Thumbs down: wrong button\n") and "manual.md" in store.get(k).notes
    j = store.add_from_chat("Hi?", "Hello.")
    assert store.get(j).messages == [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]


def test_stale_when_chunk_changes_or_document_goes(settings):
    from rag_ft.db import connect

    conn = connect(settings.db_path)  # the migrations created the documents' chunks table
    conn.execute("INSERT INTO chunks VALUES ('c1','d1','default','m.md',0,'h1','t','[]','','[]')")
    store = ExampleStore(settings.db_path)
    i = store.add(_msgs(), source="generated", collection="default", document_id="d1", document="m.md",
                  chunk_id="c1", chunk_hash="h1")
    store.add(_msgs())  # a manual example is never stale
    assert store.stale_ids() == set()
    conn.execute("UPDATE chunks SET hash = 'h2' WHERE id = 'c1'")  # the document changed
    assert store.stale_ids() == {i}
    conn.execute("UPDATE chunks SET hash = 'h1'")
    assert store.stale_ids() == set()
    conn.execute("DELETE FROM chunks")  # the document was deleted
    assert store.stale_ids() == {i}
