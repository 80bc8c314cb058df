"""index_files reports each file's outcome as soon as it is done, with one recovery per batch; the indexing lock is held only while a file is stored
(the Documents page calls it once for a whole upload). Real parsing, MiniLM, SQLite and Chroma."""

from __future__ import annotations

import threading

from documents_fixtures import markdown

from rag_ft.db import connect
from rag_ft.index.documents import document_id, get_document, index_files, recover_interrupted


def _mark_interrupted(settings, name: str) -> None:
    """What a run killed mid-way leaves: the record says 'indexing' (the stored file is there)."""
    conn = connect(settings.db_path)
    try:
        conn.execute("UPDATE documents SET status='indexing' WHERE id=?", (document_id("default", name),))
    finally:
        conn.close()


def _lock_is_free(settings, emb) -> bool:
    """Whether another thread could take the indexing lock right now (recover_interrupted says None when not)."""
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(recover_interrupted(settings, emb, blocking=False)))
    t.start()
    t.join()
    return got[0] is not None


def test_outcomes_arrive_per_file_in_order_with_one_recovery(settings, local_embeddings):
    index_files(settings, local_embeddings, [("old.md", markdown(2, "Old")), ("other.md", markdown(2, "Other"))])
    _mark_interrupted(settings, "old.md")
    files = [("a.md", markdown(2, "A")), ("empty.txt", b""), ("b.md", markdown(3, "B"))]
    seen: list[tuple[int, str, str, bool]] = []

    def on_outcome(i: int, outcome) -> None:
        b = get_document(settings, "b.md")
        seen.append((i, outcome.name, outcome.status, b is not None and b.status == "indexed"))
        if i == 0:
            # the interrupted document was finished before the first file, by the batch's one recovery
            assert get_document(settings, "old.md").status == "indexed"
            assert get_document(settings, "a.md").status == "indexed"  # on disk when it is reported
            # the lock is held only while a file is stored: between files (and while the next one is read)
            # Delete and other sessions can take it
            assert _lock_is_free(settings, local_embeddings)
            _mark_interrupted(settings, "other.md")  # not recovered again later in this batch

    outcomes = index_files(settings, local_embeddings, files, on_outcome=on_outcome)
    assert seen == [(0, "a.md", "indexed", False), (1, "empty.txt", "failed", False), (2, "b.md", "indexed", True)]
    assert [(o.name, o.status) for o in outcomes] == [(n, s) for _, n, s, _ in seen]
    assert get_document(settings, "other.md").status == "indexing"  # recovery ran once, at the start
    assert [o.name for o in recover_interrupted(settings, local_embeddings)] == ["other.md"]
    assert _lock_is_free(settings, local_embeddings)
