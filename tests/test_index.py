"""The Chroma layer: names, the recorded embedding model, vectors by hash, and no default embedding function.

test_chroma_server.py runs these same tests against a `chroma run` server process (it overrides `settings`).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag_ft.index.vectors import EmbeddingMismatch, VectorIndex, chroma_name


@given(st.text(min_size=1, max_size=80))
def test_any_collection_name_maps_to_a_valid_distinct_chroma_name(name):
    out = chroma_name(name)
    assert 3 <= len(out) <= 512 and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", out)
    assert chroma_name(name) == out and (name == name + "x" or chroma_name(name + "x") != out)


def _vec(i: int, dim: int = 8) -> list[float]:
    v = [0.0] * dim
    v[i % dim] = 1.0
    return v


def test_collection_records_its_embedding_model_and_refuses_another(settings):
    vi = VectorIndex(settings, "records")
    assert vi.built_with() is None and not vi.exists()
    vi.check("local:model-a")  # nothing built yet: any model may start it
    vi.ensure("local:model-a")
    assert vi.exists() and vi.built_with() == "local:model-a"
    vi.ensure("local:model-a")
    with pytest.raises(EmbeddingMismatch, match="built with the embedding model 'local:model-a'"):
        vi.ensure("openai:text-embedding-3-small")
    fresh = VectorIndex(settings, "records")  # a new handle reads the record back from Chroma
    assert fresh.built_with() == "local:model-a"
    fresh.drop()
    assert not VectorIndex(settings, "records").exists()


def test_upsert_query_reuse_by_hash_and_delete(settings):
    vi = VectorIndex(settings, "vectors")
    vi.ensure("test:one-hot")
    ids = [f"doc1-{i}" for i in range(4)] + ["doc2-0"]
    metas = [{"document_id": "doc1", "hash": f"h{i}"} for i in range(4)] + [{"document_id": "doc2", "hash": "h0"}]
    vi.upsert(ids, [_vec(i) for i in range(4)] + [_vec(0)], [f"text {i}" for i in range(5)], metas)
    assert vi.count() == 5
    hits = vi.query(_vec(2), 3)
    assert hits[0] == ("doc1-2", pytest.approx(1.0)) and all(0.0 <= s <= 1.0 for _, s in hits)
    got = vi.vectors_by_hash(["h2", "h0", "missing"])
    assert set(got) == {"h0", "h2"} and got["h2"] == pytest.approx(_vec(2))
    assert sorted(vi.ids_of_document("doc1")) == sorted(ids[:4])
    assert vi.vectors_by_id(["doc2-0"])["doc2-0"] == pytest.approx(_vec(0))
    vi.delete_ids(vi.ids_of_document("doc1"))
    assert vi.count() == 1 and vi.ids_of_document("doc1") == [] and set(vi.vectors_by_hash(["h0", "h2"])) == {"h0"}


def test_chroma_never_embeds_by_itself(settings):
    """Our collections have no embedding function: Chroma's default one downloads a model (fails offline)."""
    vi = VectorIndex(settings, "no-default-ef")
    vi.ensure("test:one-hot")
    col = vi.client.get_collection(vi.name, embedding_function=None)
    with pytest.raises(Exception, match="(?i)embedding"):
        col.add(ids=["x"], documents=["text without a vector"])
    assert vi.count() == 0


def test_query_gives_the_nearest_chunks_with_their_cosine_similarity(settings, local_embeddings):
    vi = VectorIndex(settings, "nearest")
    vi.ensure("local:all-MiniLM-L6-v2")
    texts = ["Refunds are paid within 14 days.", "The API allows 600 requests per minute."]
    vectors = local_embeddings.embed_documents(texts)
    vi.upsert(["a", "b"], vectors, texts, [{"hash": "a"}, {"hash": "b"}])
    q = local_embeddings.embed_query("how fast do I get my money back")
    [(cid, sim)] = vi.query(q, 1)
    cos = sum(x * y for x, y in zip(q, vectors[0], strict=True)) / (
        sum(x * x for x in q) ** 0.5 * sum(y * y for y in vectors[0]) ** 0.5)
    assert cid == "a" and sim == pytest.approx(cos, abs=1e-4)
    assert [c for c, _ in vi.query(q, 10)] == ["a", "b"]  # more than stored: every chunk, best first
    assert vi.query(local_embeddings.embed_query("rate limit"), 1)[0][0] == "b"
