"""Indexing as a pipeline: the worker process reads file i+1 while this process embeds file i.

Real parsing in the bounded worker, real MiniLM, SQLite and Chroma. Overlap is shown from the outside: while
the first file is being embedded, the worker process burns CPU, which it can only do reading the second file
(the first one's text was already back before its embedding began). Read one after the other, the worker
would sit idle there and the test would fail.
"""

from __future__ import annotations

import os
import time

import psutil
from documents_fixtures import WORDS, markdown

from rag_ft.index.documents import document_chunks, index_files
from rag_ft.ingest import parse_bounded
from rag_ft.ingest.sandbox import submit
from rag_ft.models.local_embeddings import LocalEmbeddings


def slow_text(paragraphs: int) -> bytes:
    """Distinct paragraphs (unstructured caches its per-paragraph NLP): about a second to read per 300 here."""
    return "".join(f"Paragraph {i} says the {WORDS[i % 7]} ledger of region {i * 7919 % 10007} closes on day "
                   f"{i % 28 + 1} at {i % 24:02d}:00.\n\n" for i in range(paragraphs)).encode()


def _worker() -> psutil.Process:
    """The reader process this test process started (rag_ft.ingest.sandbox's worker)."""
    for child in psutil.Process(os.getpid()).children():
        try:
            if "rag_ft.ingest.worker" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    raise AssertionError("no reader worker running")


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


class FirstCallWatchesTheWorker(LocalEmbeddings):
    """The real model; its first call (the first file) lasts until the worker has worked 0.5 s of CPU, or 60 s,
    and records how much CPU the worker used meanwhile, with timestamps of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[float, float]] = []
        self.worker_cpu_during_first = -1.0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        started = time.monotonic()
        if not self.spans:
            worker = _worker()
            before = _cpu(worker)
            while time.monotonic() - started < 60 and _cpu(worker) - before < 0.5:
                time.sleep(0.05)
            self.worker_cpu_during_first = _cpu(worker) - before
        try:
            return super().embed_documents(texts)
        finally:
            self.spans.append((started, time.monotonic()))


def test_the_next_file_is_read_while_the_current_one_embeds(settings, local_embeddings) -> None:
    parse_bounded("warm.md", b"# Warm\n\nStarts the worker before the batch.\n")  # its start-up is not a read
    emb = FirstCallWatchesTheWorker()
    files = [("first.md", markdown(2, "First")), ("second.txt", slow_text(900))]
    started = time.monotonic()
    outcomes = index_files(settings, emb, files)
    elapsed = time.monotonic() - started
    assert [(o.name, o.status) for o in outcomes] == [("first.md", "indexed"), ("second.txt", "indexed")]
    # the worker read the second file during the first file's embedding: the read started before it ended
    assert emb.worker_cpu_during_first >= 0.5, (emb.worker_cpu_during_first, emb.spans, elapsed)
    # and the overlap cost nothing in results: the same chunks as a file read on its own
    alone = parse_bounded("second.txt", files[1][1])
    assert [c.text for c in document_chunks(settings, "second.txt")] == [c.text for c in alone.chunks]


def test_submit_reads_in_order_and_a_cancelled_file_is_skipped() -> None:
    slow = submit("slow.txt", slow_text(300))
    skipped = submit("skipped.md", b"# Skipped\n\nNever read.\n")
    last = submit("last.md", b"# Last\n\nRead after the slow one.\n")
    assert skipped.cancel()  # queued behind the slow file: cancelling it means it is never sent to the worker
    assert not slow.done()  # submit returned at once, the read goes on in the background
    first = slow.result(timeout=120)
    assert first.error is None and first.chunks
    assert "Read after the slow one" in last.result(timeout=60).chunks[0].text
    assert skipped.cancelled()
    refused = submit("report\udc80.txt", b"x").result(timeout=10)  # refused by name, before the worker
    assert refused.error and "lone surrogate" in refused.error
