"""Citation markers: parse them, check them against the passages, and attach support where the model wrote none.

A citation is only shown when the cited passage shares content with the sentence that cites it. Small
local models often write no markers at all; then each sentence gets the passage that supports it best,
if any does, rather than none or all of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag_ft.records import Passage
from rag_ft.text import CONTENT_WORD, MARKER, content_words, plural_stem, split_sentences
from rag_ft.untrusted import inert

SUPPORT_MIN = 0.25  # share of a sentence's content words found in the passage, below which it is "unsupported"


def support(sentence: str, passage_text: str) -> float:
    """Share (0..1) of the sentence's content words that occur in the passage."""
    words = set(content_words(MARKER.sub(" ", sentence)))
    if not words:
        return 0.0
    have = set(content_words(passage_text))
    return len(words & have) / len(words)


def markers_in(text: str) -> list[int]:
    out: list[int] = []
    for group in MARKER.findall(text):
        out.extend(int(n) for n in re.split(r"\s*,\s*", group))
    return out


@dataclass
class Citation:
    marker: int  # the [n] shown in the answer, 1-based index into the passages
    passage: Passage
    supported: bool  # the citing sentences share content with the passage
    support: float
    sentences: list[str] = field(default_factory=list)  # the answer's sentences that cite it
    attached: bool = False  # True when we attached it because the model wrote no marker
    highlights: list[str] = field(default_factory=list)  # passage words the citing sentences rely on


@dataclass
class Checked:
    text: str  # answer with dangling markers removed and attached markers added
    citations: list[Citation]
    removed: list[int]  # markers that pointed at no passage


def highlight_words(sentences: Sequence[str], passage_text: str) -> list[str]:
    """The passage's own words (original case) that the citing sentences share with it."""
    wanted = set()
    for s in sentences:
        wanted.update(content_words(MARKER.sub(" ", s)))
    seen, out = set(), []
    for w in CONTENT_WORD.findall(passage_text):
        key = plural_stem(w.lower())
        if key in wanted and key not in seen:
            seen.add(key)
            out.append(w)
    return out


def check(answer: str, passages: Sequence[Passage], attach: bool = True) -> Checked:
    """Map [n] markers to passages, drop dangling ones, flag unsupported ones, attach support if none."""
    valid = set(range(1, len(passages) + 1))
    removed = sorted({n for n in markers_in(answer) if n not in valid})

    def fix(match: re.Match) -> str:
        kept = [n for n in markers_in(match.group(0)) if n in valid]
        return "[" + ", ".join(str(n) for n in kept) + "]" if kept else ""

    text = MARKER.sub(fix, answer)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)  # "claim [9]." -> "claim ." -> "claim."
    text = re.sub(r"[ \t]{2,}", " ", text).strip()

    sentences = split_sentences(text)
    cited: dict[int, list[str]] = {}
    for s in sentences:
        for n in markers_in(s):
            cited.setdefault(n, []).append(s)

    attached: set[int] = set()
    if not cited and attach and passages:
        new_sentences = []
        for s in sentences:
            scores = [(support(s, p.text), i) for i, p in enumerate(passages, 1)]
            best, n = max(scores)
            if best >= SUPPORT_MIN and content_words(s):
                cited.setdefault(n, []).append(s)
                attached.add(n)
                s = _append_marker(s, n)
            new_sentences.append(s)
        if attached:
            text = " ".join(new_sentences)

    citations = []
    for n in sorted(cited):
        p = passages[n - 1]
        score = max(support(s, p.text) for s in cited[n])
        citations.append(
            Citation(n, p, score >= SUPPORT_MIN, score, cited[n], n in attached, highlight_words(cited[n], p.text))
        )
    return Checked(text, citations, removed)


def _append_marker(sentence: str, n: int) -> str:
    m = re.search(r"[.!?]+[\"')\]]*$", sentence)
    if m:
        return f"{sentence[: m.start()]} [{n}]{sentence[m.start():]}"
    return f"{sentence} [{n}]"


def marked_html(passage_text: str, words: Sequence[str]) -> str:
    """The passage as inert HTML for a source card: every character shown as itself (``untrusted.inert``), the
    highlight ``words`` (in any case or number) wrapped in ``<mark>``, line breaks as ``<br>``.

    Escaping comes first, word by word, and only our own tags are added after: a document cannot smuggle in
    markup, and a highlight never lands inside an escaped character. With no raw newline left, the card's
    HTML block cannot end early, so Markdown never resumes inside it (a blank line would end it).
    """
    keys = {plural_stem(w.lower()) for w in words}
    out, at = [], 0
    for m in CONTENT_WORD.finditer(passage_text):
        if plural_stem(m.group(0).lower()) in keys:
            out.append(inert(passage_text[at:m.start()]))
            out.append(f"<mark>{inert(m.group(0))}</mark>")
            at = m.end()
    out.append(inert(passage_text[at:]))
    return "".join(out).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")
