"""One indexing run at a time per data folder: a file lock plus a re-entrant thread lock.

The file lock is dropped by the OS when its holder dies, so a killed run never blocks the next; the thread
lock serialises the sessions that Streamlit runs on threads of one process.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rag_ft.settings import Settings

_THREAD_LOCK = threading.RLock()
_LOCAL = threading.local()


@contextmanager
def indexing_lock(settings: Settings, blocking: bool = True) -> Iterator[bool]:
    """Exclusive right to write the index of this data folder; yields False when ``blocking=False`` and busy.

    A file lock (the OS drops it when the holder dies, so a killed run never blocks the next) plus a
    re-entrant thread lock (Streamlit runs sessions on threads of one process).
    """
    if not _THREAD_LOCK.acquire(blocking=blocking):
        yield False
        return
    try:
        depth = getattr(_LOCAL, "depth", 0)
        if depth:  # re-entered by this thread: it already holds the file lock
            _LOCAL.depth = depth + 1
            try:
                yield True
            finally:
                _LOCAL.depth = depth
            return
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with open(settings.data_dir / ".indexing.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            _LOCAL.depth = 1
            try:
                yield True
            finally:
                _LOCAL.depth = 0
                fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        _THREAD_LOCK.release()
