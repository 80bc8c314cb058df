"""The child process of ``rag_ft.ingest.sandbox``: reads the files the server sends it, under a memory cap.

Run as ``python -m rag_ft.ingest.worker READ_FD WRITE_FD MEMORY_MB IDLE_S``. It imports the readers first,
then caps its address space (RLIMIT_AS) at its own size plus MEMORY_MB, so the cap measures what one file
costs and not the ~2 GB of libraries mapped before it; LibreOffice, pandoc and tesseract, started from here,
inherit the cap. A file that hits the cap is answered "memory" and the worker exits, since a process that
ran out of memory once is in no state to read the next file. After IDLE_S seconds with no file, it exits
too (the server starts another one when needed).
"""

from __future__ import annotations

import importlib
import os
import resource
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

MB = 1024 * 1024
EXIT_OUT_OF_MEMORY = 3  # the answer itself could not be built or sent for lack of memory
MEMORY_WORDS = ("memoryerror", "out of memory", "insufficient memory", "bad_alloc", "cannot allocate memory")
READERS = ("pdf", "docx", "pptx", "xlsx", "html", "md", "text", "csv", "email", "msg", "epub", "odt", "rtf",
           "image")


def vm_kb(key: str) -> int:
    """A size from /proc/self/status (VmSize, VmPeak, VmHWM...), in kB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def warm_up() -> None:
    """Import every reader and load the language model now, so they count in the base and not per file."""
    from rag_ft.ingest.pipeline import parse

    for reader in READERS:
        try:
            importlib.import_module(f"unstructured.partition.{reader}")
        except Exception:  # an optional reader that is missing fails later, on its own files, with a name
            pass
    parse("warm-up.txt", b"Warm up.\n\nThis sentence loads the language model before the memory cap is set.\n")


def looks_out_of_memory(error: str | None, limit_kb: int) -> bool:
    """A failure caused by the cap: named as such by a library, or with the peak at the cap."""
    if not error:
        return False
    low = error.lower()
    return any(w in low for w in MEMORY_WORDS) or vm_kb("VmPeak") >= limit_kb - 64 * 1024


def serve(inbox: Connection, outbox: Connection, memory_mb: int, idle_s: float) -> int:
    from rag_ft.ingest.pipeline import parse

    warm_up()
    base_kb = vm_kb("VmSize")
    limit_kb = base_kb + memory_mb * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit_kb * 1024, limit_kb * 1024))
    outbox.send(("ready", {"pid": os.getpid(), "base_mb": base_kb // 1024, "limit_mb": limit_kb // 1024}))
    while True:
        if not inbox.poll(idle_s):
            return 0
        try:
            name, data, kwargs = inbox.recv()
        except EOFError:  # the server is gone
            return 0
        started = time.monotonic()
        result: Any = parse(name, data, **kwargs)
        del data
        hit = looks_out_of_memory(result.error, limit_kb)
        stats = {"seconds": round(time.monotonic() - started, 2), "peak_vm_mb": vm_kb("VmPeak") // 1024,
                 "peak_rss_mb": vm_kb("VmHWM") // 1024, "base_mb": base_kb // 1024}
        outbox.send(("memory" if hit else "ok", result, stats))
        if hit:
            return 0


def main(argv: list[str]) -> int:
    read_fd, write_fd, memory_mb, idle_s = int(argv[0]), int(argv[1]), int(argv[2]), float(argv[3])
    inbox, outbox = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    try:
        return serve(inbox, outbox, memory_mb, idle_s)
    except MemoryError:
        return EXIT_OUT_OF_MEMORY


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
