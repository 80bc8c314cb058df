"""Shared helpers for the indexing and retrieval benchmarks (run from the repo root with .venv/bin/python)."""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rag_ft  # noqa: E402,F401  (offline env first)
from rag_ft.settings import Settings, load_settings  # noqa: E402

WORDS = ("account billing invoice refund plan seat workspace member owner admin token key quota limit rate "
         "request export import backup restore region cluster replica webhook event retry timeout error code "
         "session cookie password login sso saml scim audit log policy retention deletion archive note page "
         "share link permission role guest team enterprise free trial upgrade downgrade card payment tax vat "
         "currency receipt renewal cancel notice release version feature fix bug sync offline mobile desktop "
         "browser extension search tag folder template attachment upload download limit storage gigabyte").split()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def summary(ms: list[float]) -> str:
    return f"p50 {pct(ms, 50):7.2f} ms   p95 {pct(ms, 95):7.2f} ms   mean {statistics.mean(ms):7.2f} ms"


def temp_settings(**extra: str) -> Settings:
    folder = tempfile.mkdtemp(prefix="ragft-bench-")
    return load_settings(env={"RAG_FT_DATA_DIR": folder, "RAG_FT_PROVIDER": "local", **extra})


def synthetic_markdown(doc: int, sections: int, seed: int = 0) -> bytes:
    """A support-style Markdown document; every section ~700 characters of distinct text."""
    rng = random.Random(seed * 1000 + doc)
    parts = [f"# Handbook {doc}\n"]
    for s in range(sections):
        sentences = []
        for j in range(6):
            words = " ".join(rng.choice(WORDS) for _ in range(14))
            sentences.append(f"Rule {doc}.{s}.{j}: the {words}.")
        parts.append(f"## Section {doc}.{s} {rng.choice(WORDS)} {rng.choice(WORDS)}\n\n" + " ".join(sentences) + "\n")
    return "\n".join(parts).encode()


def synthetic_text(rng: random.Random, n_words: int = 90) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)) + f" id{rng.randrange(10**9)}"
