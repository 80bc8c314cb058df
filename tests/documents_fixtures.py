"""Documents for the index/documents/retrieval tests: Markdown built so each section becomes its own chunk."""

from __future__ import annotations

WORDS = ("invoice ledger account export webhook token quota region backup archive cluster replica tenant "
         "policy audit session cookie gateway schema payload retry timeout mirror snapshot").split()


def section(i: int, topic: str = "", extra: str = "") -> str:
    """~900 characters about one topic; the numbers and words make every section's text distinct."""
    topic = topic or f"Topic {i}"
    words = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(12))
    body = " ".join(
        f"Paragraph {i}.{j} of {topic} explains how the {WORDS[(i + j) % len(WORDS)]} settings work, "
        f"with reference number R{i:03d}{j} and the words {words}."
        for j in range(4)
    )
    return f"## {topic}\n\n{body} {extra}\n\n"


def markdown(n: int, title: str = "Guide", overrides: dict[int, str] | None = None) -> bytes:
    """A Markdown document of ``n`` sections; ``overrides[i]`` appends text to section i (a content change)."""
    overrides = overrides or {}
    text = f"# {title}\n\n" + "".join(section(i, extra=overrides.get(i, "")) for i in range(n))
    return text.encode()
