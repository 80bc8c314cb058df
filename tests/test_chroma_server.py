"""The index and document-store tests again, against a real Chroma server (`chroma run`) on 127.0.0.1.

Same code path as the app with CHROMA_HOST set: rag_ft.index.vectors opens a ``chromadb.HttpClient``. The test
functions are imported from test_index.py and test_documents.py; the ``settings`` fixture below points them at
the server (pytest resolves fixtures in the module that collects a test).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from procs import free_port, stop_process
from test_documents import (  # noqa: F401  (collected here with the server settings)
    test_bad_files_fail_in_plain_words_and_stop_nothing,
    test_changed_file_embeds_only_new_content,
    test_delete_removes_chunks_vectors_record_and_file,
    test_embedding_mismatch_is_refused_until_reembedded,
    test_first_index_then_unchanged_reupload_embeds_nothing,
    test_killed_run_leaves_nothing_half_indexed_and_next_run_completes,
    test_reindex_reuses_vectors_and_collections_are_separate,
)
from test_index import (  # noqa: F401
    test_chroma_never_embeds_by_itself,
    test_collection_records_its_embedding_model_and_refuses_another,
    test_query_gives_the_nearest_chunks_with_their_cosine_similarity,
    test_upsert_query_reuse_by_hash_and_delete,
)

CHROMA = Path(sys.executable).with_name("chroma")




@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    if not CHROMA.exists():
        pytest.skip("the chroma CLI is not installed beside this Python")
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log_path = folder / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(CHROMA), "run", "--path", str(folder / "db"), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("chroma did not start:\n" + log_path.read_text()[-3000:]) from None
                time.sleep(0.3)
        yield port
    finally:
        stop_process(proc)
        from rag_ft.index.vectors import forget_clients

        forget_clients()


@pytest.fixture
def settings(data_dir, chroma_server):
    """Local models and a per-test data folder (SQLite), vectors on the server; emptied after each test."""
    from rag_ft.index.vectors import chroma_client
    from rag_ft.settings import load_settings

    s = load_settings(env={"RAG_FT_DATA_DIR": str(data_dir), "RAG_FT_PROVIDER": "local",
                           "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(chroma_server)})
    yield s
    client = chroma_client(s)
    for col in client.list_collections():
        client.delete_collection(getattr(col, "name", col))


def test_the_server_really_holds_the_vectors(settings, local_embeddings, chroma_server):
    from rag_ft.index.documents import index_files
    from rag_ft.index.vectors import chroma_name
    from rag_ft.retrieval.hybrid import Retriever

    index_files(settings, local_embeddings, [("faq.txt", b"Two-factor codes expire after 30 seconds.")])
    assert not settings.chroma_dir.exists()  # nothing embedded in the data folder
    import chromadb

    other = chromadb.HttpClient(host="127.0.0.1", port=chroma_server)  # a separate client sees it on the server
    assert other.get_collection(chroma_name("default"), embedding_function=None).count() == 1
    [hit] = Retriever(settings, local_embeddings).search("when do 2FA codes expire", k=1)
    assert hit.document == "faq.txt" and 0 < hit.score <= 1


def test_an_unreachable_server_is_named_with_the_fix(data_dir):
    from rag_ft.index.vectors import IndexProblem, VectorIndex
    from rag_ft.settings import load_settings

    s = load_settings(env={"RAG_FT_DATA_DIR": str(data_dir), "CHROMA_HOST": "127.0.0.1",
                           "CHROMA_PORT": str(free_port())})
    with pytest.raises(IndexProblem, match=r"Cannot reach the Chroma server at 127\.0\.0\.1:\d+.*unset CHROMA_HOST"):
        VectorIndex(s, "default")
