"""The incremental document store with real parsing, real MiniLM embeddings, real SQLite and real Chroma.

test_chroma_server.py runs these same tests against a `chroma run` server process (it overrides `settings`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from documents_fixtures import markdown

from rag_ft.db import connect
from rag_ft.index.documents import (
    check_embedding,
    delete_document,
    document_chunks,
    document_id,
    get_document,
    index_files,
    list_collections,
    list_documents,
    load_sample_documents,
    reembed,
    reindex_document,
    sample_files,
)
from rag_ft.index.vectors import EmbeddingMismatch, VectorIndex
from rag_ft.retrieval.hybrid import Retriever

ROOT = Path(__file__).resolve().parent.parent


def _sql_count(settings, sql, *args) -> int:
    conn = connect(settings.db_path)
    try:
        return conn.execute(sql, args).fetchone()[0]
    finally:
        conn.close()


def _found(settings, emb, query, collection="default") -> list[str]:
    return [p.document for p in Retriever(settings, emb).search(query, k=10, collection=collection, threshold=0)]


def test_first_index_then_unchanged_reupload_embeds_nothing(settings, local_embeddings):
    files = [("guide.md", markdown(5, "Guide")), ("notes.txt", b"The backup window opens at 02:00 UTC every Sunday.")]
    before = local_embeddings.calls
    first = index_files(settings, local_embeddings, files)
    assert [o.status for o in first] == ["indexed", "indexed"], first
    assert first[0].chunks == 5 and first[1].chunks == 1
    assert local_embeddings.calls - before == sum(o.embedded for o in first) == 6
    recs = {d.name: d for d in list_documents(settings)}
    assert recs["guide.md"].status == "indexed" and recs["guide.md"].chunk_count == 5
    assert recs["guide.md"].embedding == "local:all-MiniLM-L6-v2" and recs["guide.md"].size == len(files[0][1])
    assert VectorIndex(settings).built_with() == "local:all-MiniLM-L6-v2"

    before = local_embeddings.calls
    again = index_files(settings, local_embeddings, files)
    assert [o.status for o in again] == ["unchanged", "unchanged"]
    assert all(o.embedded == 0 for o in again) and again[0].message.startswith("unchanged")
    assert local_embeddings.calls == before  # not one text embedded
    assert _sql_count(settings, "SELECT count(*) FROM chunks") == 6
    assert VectorIndex(settings).count() == 6


def test_changed_file_embeds_only_new_content(settings, local_embeddings):
    index_files(settings, local_embeddings, [("guide.md", markdown(6))])
    old = {c.hash for c in document_chunks(settings, "guide.md")}
    changed = markdown(6, overrides={4: "Since version 2.3 the refund window is 45 days for annual plans."})
    before = local_embeddings.calls
    [out] = index_files(settings, local_embeddings, [("guide.md", changed)])
    new = {c.hash for c in document_chunks(settings, "guide.md")}
    assert out.status == "updated" and out.chunks == 6
    assert out.embedded == len(new - old) == 1 == local_embeddings.calls - before
    assert "1 newly embedded" in out.message
    # the replaced chunk is gone from SQLite, from Chroma and from search; the new text is found
    assert _sql_count(settings, "SELECT count(*) FROM chunks") == 6 and VectorIndex(settings).count() == 6
    hits = Retriever(settings, local_embeddings).search("refund window for annual plans", k=1, threshold=0)
    assert "45 days" in hits[0].text


def test_delete_removes_chunks_vectors_record_and_file(settings, local_embeddings):
    index_files(settings, local_embeddings, [("keep.md", markdown(2, "Keep")),
                                             ("gone.txt", b"Error E-7781 means the zebra gateway rejected the token.")])
    doc_id = document_id("default", "gone.txt")
    assert (settings.data_dir / "files" / doc_id).exists()
    assert "gone.txt" in _found(settings, local_embeddings, "zebra gateway E-7781")
    assert delete_document(settings, "gone.txt") is True
    assert [d.name for d in list_documents(settings)] == ["keep.md"]
    assert _sql_count(settings, "SELECT count(*) FROM chunks WHERE document_id=?", doc_id) == 0
    assert VectorIndex(settings).ids_of_document(doc_id) == []
    assert not (settings.data_dir / "files" / doc_id).exists()
    assert "gone.txt" not in _found(settings, local_embeddings, "zebra gateway E-7781")
    assert delete_document(settings, "gone.txt") is False


def test_bad_files_fail_in_plain_words_and_stop_nothing(settings, local_embeddings):
    index_files(settings, local_embeddings, [("guide.md", markdown(3))])
    outs = index_files(settings, local_embeddings, [
        ("empty.txt", b""), ("archive.xyz", b"\x00\x01binary"), ("ok.txt", b"Invoices are emailed on the 1st."),
        ("guide.md", b""),  # a broken new version of an indexed document...
    ])
    by = {o.name: o for o in outs}
    assert by["empty.txt"].status == "failed" and "empty" in by["empty.txt"].error
    assert by["archive.xyz"].status == "failed" and "unsupported" in by["archive.xyz"].error
    assert by["ok.txt"].status == "indexed"
    assert by["guide.md"].status == "failed"
    rec = get_document(settings, "guide.md")  # ...leaves the indexed version in place
    assert rec.status == "indexed" and rec.chunk_count == 3
    assert {d.name for d in list_documents(settings)} == {"guide.md", "ok.txt"}


def test_reindex_reuses_vectors_and_collections_are_separate(settings, local_embeddings):
    index_files(settings, local_embeddings, [("guide.md", markdown(3))], collection="team-a")
    before = local_embeddings.calls
    out = reindex_document(settings, local_embeddings, "guide.md", collection="team-a")
    assert out.status == "updated" and out.chunks == 3 and out.embedded == 0 == local_embeddings.calls - before
    assert reindex_document(settings, local_embeddings, "nope.md", collection="team-a").status == "failed"
    assert list_collections(settings) == ["team-a"]
    assert list_documents(settings, "default") == []
    assert _found(settings, local_embeddings, "Topic 1", collection="default") == []
    assert "guide.md" in _found(settings, local_embeddings, "Topic 1", collection="team-a")


def test_embedding_mismatch_is_refused_until_reembedded(settings, local_embeddings):
    index_files(settings, local_embeddings, [("guide.md", markdown(3))])
    other = settings.with_(embedding_model="another-embedding-model")
    with pytest.raises(EmbeddingMismatch, match="re-embed the collection") as err:
        Retriever(other, local_embeddings).search("Topic 1")
    assert err.value.built_with == "local:all-MiniLM-L6-v2" and err.value.current == "local:another-embedding-model"
    with pytest.raises(EmbeddingMismatch):
        index_files(other, local_embeddings, [("more.txt", b"more text here")])
    with pytest.raises(EmbeddingMismatch):
        check_embedding(other)
    assert get_document(settings, "more.txt") is None  # refused before anything changed

    before = local_embeddings.calls
    assert reembed(other, local_embeddings) == 3 == local_embeddings.calls - before
    check_embedding(other)
    assert VectorIndex(other).built_with() == "local:another-embedding-model"
    assert get_document(other, "guide.md").embedding == "local:another-embedding-model"
    assert "guide.md" in _found(other, local_embeddings, "Topic 1")
    with pytest.raises(EmbeddingMismatch):  # and now the old model is the stranger
        Retriever(settings, local_embeddings).search("Topic 1")


KILLER = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import rag_ft
from rag_ft.settings import load_settings
from rag_ft.models.local_embeddings import LocalEmbeddings
from rag_ft.index import documents
from rag_ft.index import vectors as index

where = sys.argv[2]
calls = {"n": 0}

def die_on_second(*args, **kwargs):
    calls["n"] += 1
    if calls["n"] == 2:  # the first file completed; die in the middle of the second
        os.kill(os.getpid(), signal.SIGKILL)

class DyingEmbeddings(LocalEmbeddings):
    def embed_documents(self, texts):
        vectors = super().embed_documents(texts)
        if where == "embedding":
            die_on_second()
        return vectors

if where == "store":  # vectors are in Chroma, the SQLite commit has not happened
    original = index.VectorIndex.delete_ids
    def delete_ids(self, ids):
        die_on_second()
        return original(self, ids)
    index.VectorIndex.delete_ids = delete_ids

s = load_settings()
files = [(name, open(os.path.join(sys.argv[3], name), "rb").read()) for name in ("small.md", "big.md")]
documents.index_files(s, DyingEmbeddings(), files)
print("not killed")
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["embedding", "store"])
def test_killed_run_leaves_nothing_half_indexed_and_next_run_completes(settings, local_embeddings, tmp_path, where):
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.md").write_bytes(markdown(2, "Small"))
    big = markdown(40, "Big", overrides={39: "The kiwi escalation desk answers within 4 hours."})
    (src / "big.md").write_bytes(big)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_FT_", "CHROMA_"))}
    env.update(RAG_FT_DATA_DIR=str(settings.data_dir), RAG_FT_PROVIDER="local")
    if settings.chroma_host:
        env.update(CHROMA_HOST=settings.chroma_host, CHROMA_PORT=str(settings.chroma_port))
    proc = subprocess.run([sys.executable, "-c", KILLER, str(ROOT), where, str(src)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr

    recs = {d.name: d for d in list_documents(settings)}
    assert recs["small.md"].status == "indexed"
    assert recs["big.md"].status == "indexing"  # never 'indexed' with part of its chunks
    big_id = document_id("default", "big.md")
    stored = VectorIndex(settings).ids_of_document(big_id)
    assert (len(stored) == 40) if where == "store" else (stored == [])
    assert "big.md" not in _found(settings, local_embeddings, "kiwi escalation desk")  # orphans never served

    before = local_embeddings.calls
    assert index_files(settings, local_embeddings, []) == []  # the next run finishes it first
    rec = get_document(settings, "big.md")
    assert rec.status == "indexed" and rec.chunk_count == 40 and rec.hash
    # killed after its vectors were stored: they are reused; killed while embedding: embedded now, except
    # the section big.md shares with small.md ("Topic 1": same text, same hash, vector reused)
    fresh = {c.hash for c in document_chunks(settings, "big.md")} - {c.hash for c in document_chunks(settings, "small.md")}
    assert len(fresh) == 39
    assert local_embeddings.calls - before == (0 if where == "store" else 39)
    assert VectorIndex(settings).count() == 42
    assert _found(settings, local_embeddings, "kiwi escalation desk")[0] == "big.md"


def test_load_sample_documents(settings, local_embeddings):
    files = sample_files()
    if not files:
        pytest.skip("sample_docs/ has no documents yet")
    outs = load_sample_documents(settings, local_embeddings)
    assert [o.name for o in outs] == [n for n, _ in files]
    assert all(o.status == "indexed" for o in outs), [(o.name, o.error) for o in outs]
    assert all(o.status == "unchanged" for o in load_sample_documents(settings, local_embeddings))
