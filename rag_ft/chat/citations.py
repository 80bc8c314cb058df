"""Citation markers: parse them, check each against the sentence that carries it, and attach support where the
model wrote none.

A citation is only shown when the cited passage shares content with the sentence that cites it: a marker on a
passage that does not support its sentence moves to the retrieved passage that does, or is dropped. Small
local models often write no markers at all; then each sentence gets the passage that supports it best, if any
does, rather than none or all of them. Claims that no passage supports are listed, so the page can mark them,
and the share of supported claims is the answer's support level.
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


@dataclass
class Citation:
    marker: int  # the [n] shown in the answer, 1-based index into the passages
    passage: Passage
    supported: bool  # every shown citation passed the check (kept for stored answers and the CLI)
    support: float  # best share of a citing sentence's content words found in the passage
    sentences: list[str] = field(default_factory=list)  # the answer's sentences that cite it (as shown)
    attached: bool = False  # True when we attached it because the model wrote no marker on those sentences
    highlights: list[str] = field(default_factory=list)  # passage words the citing sentences rely on
    moved_from: list[int] = field(default_factory=list)  # the model's markers that pointed elsewhere, moved here


@dataclass
class Checked:
    text: str  # answer with dangling and dropped markers removed, moved and attached markers in place
    citations: list[Citation]
    removed: list[int]  # markers that pointed at no passage
    dropped: list[int] = field(default_factory=list)  # markers whose passage did not support the sentence (no other did)
    unsupported: list[str] = field(default_factory=list)  # claims (as in ``text``) that no passage supports
    claims: int = 0  # sentences with content words: what the support level counts

    @property
    def support_level(self) -> float | None:
        """Share of the answer's claims that a shown passage supports; None when it makes no claim."""
        return None if not self.claims else 1 - len(self.unsupported) / self.claims


@dataclass
class _Sentence:
    """One sentence's verdict: its markers after the check and what changed."""

    markers: dict[int, int | None]  # written marker -> the passage it now points at (None: dropped)
    attached: int | None = None
    claim: bool = False
    supported: bool = False


def _judge(sentence: str, passage_words: Sequence[set[str]], attach: bool) -> _Sentence:
    """Keep, move or drop each marker the sentence carries; attach the best passage when it carries none."""
    words = set(content_words(MARKER.sub(" ", sentence)))
    written = list(dict.fromkeys(markers_in(sentence)))
    verdict = _Sentence({}, claim=bool(words))
    if not words:  # nothing to check a passage against: leave what the model wrote
        verdict.markers = {n: n for n in written}
        verdict.supported = bool(written)
        return verdict
    share = [len(words & have) / len(words) for have in passage_words]
    kept = [n for n in written if share[n - 1] >= SUPPORT_MIN]
    for n in written:
        # a sentence citing several passages ("A and B [1, 2]") needs each only for its own part: one that holds
        # enough of what the others lack is kept too
        if n not in kept and kept:
            rest = words - set().union(*(passage_words[m - 1] for m in kept))
            if rest and len(rest & passage_words[n - 1]) / len(rest) >= SUPPORT_MIN:
                kept.append(n)
    ranked = sorted(range(1, len(share) + 1), key=lambda i: (-share[i - 1], i))
    for n in written:
        if n in kept:
            verdict.markers[n] = n
            continue
        best = next((i for i in ranked if share[i - 1] >= SUPPORT_MIN), None)
        verdict.markers[n] = best  # the best supporting passage (maybe one the sentence cites already), or dropped
    if not written and attach and ranked and share[ranked[0] - 1] >= SUPPORT_MIN:
        verdict.attached = ranked[0]
    verdict.supported = any(v is not None for v in verdict.markers.values()) or verdict.attached is not None or (
        not attach and bool(ranked) and share[ranked[0] - 1] >= SUPPORT_MIN)
    return verdict


def _rewrite(sentence: str, verdict: _Sentence) -> str:
    def group(match: re.Match) -> str:
        now = [verdict.markers.get(n) for n in markers_in(match.group(0))]
        kept = list(dict.fromkeys(n for n in now if n is not None))
        return "[" + ", ".join(str(n) for n in kept) + "]" if kept else ""

    out = _tidy(MARKER.sub(group, sentence))
    out = re.sub(r"(\[\d+(?:, \d+)*\])(?:\s*\1)+", r"\1", out)  # "[2] [2]" after a move -> "[2]"
    return _append_marker(out, verdict.attached) if verdict.attached is not None else out


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)  # "claim [9]." -> "claim ." -> "claim."
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _spans(text: str) -> list[tuple[int, int]]:
    """Where each of ``split_sentences(text)`` sits in ``text``, so rewriting one keeps the layout around it.

    A line of markers alone ("[2]" under a claim) belongs to the sentence above it: it is checked against it.
    """
    out: list[tuple[int, int]] = []
    at = 0
    for s in split_sentences(text):
        start = text.find(s, at)
        at = start + len(s)
        if out and markers_in(s) and not content_words(MARKER.sub(" ", s)):
            out[-1] = (out[-1][0], at)
        else:
            out.append((start, at))
    return out


def check(answer: str, passages: Sequence[Passage], attach: bool = True) -> Checked:
    """Check every citation against the sentence that carries it.

    Markers that point at no passage are removed. A marker whose passage does not support its sentence moves
    to the retrieved passage that supports it best, or is dropped when none does. A claim with no marker gets
    the passage that supports it (``attach``). Claims that no passage supports are listed in ``unsupported``.
    """
    valid = set(range(1, len(passages) + 1))
    removed = sorted({n for n in markers_in(answer) if n not in valid})

    def fix(match: re.Match) -> str:
        kept = [n for n in markers_in(match.group(0)) if n in valid]
        return "[" + ", ".join(str(n) for n in kept) + "]" if kept else ""

    text = _tidy(MARKER.sub(fix, answer))
    passage_words = [set(content_words(p.text)) for p in passages]
    cited: dict[int, list[str]] = {}
    own: set[int] = set()
    moved: dict[int, list[int]] = {}
    dropped: list[int] = []
    unsupported: list[str] = []
    claims = 0
    parts, at = [], 0
    for start, end in _spans(text):
        verdict = _judge(text[start:end], passage_words, attach)
        sentence = _rewrite(text[start:end], verdict)
        parts += [text[at:start], sentence]
        at = end
        claims += verdict.claim
        if verdict.claim and not verdict.supported:
            unsupported.append(sentence)
        for n, now in verdict.markers.items():
            if now is None:
                dropped.append(n)
            elif now != n:
                moved.setdefault(now, []).append(n)
        for n in markers_in(sentence):
            cited.setdefault(n, []).append(sentence)
            if n != verdict.attached:
                own.add(n)
    text = "".join(parts) + text[at:]

    citations = []
    for n in sorted(cited):
        p = passages[n - 1]
        score = max(support(s, p.text) for s in cited[n])
        citations.append(Citation(n, p, True, score, cited[n], n not in own, highlight_words(cited[n], p.text),
                                  sorted(set(moved.get(n, [])))))
    return Checked(text, citations, removed, sorted(set(dropped)), unsupported, claims)


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


# What the Chat page says under an answer of the small local model (ModelChoice.backend == "local"): at 135M
# parameters it misreads passages even when it cites the right one, so the sources are what to trust.
SMALL_MODEL_NOTE = ("Answered by a small offline model: it can be wrong, even next to a source. "
                    "Trust the passages below, not the answer's wording.")
WELL_SUPPORTED = 0.8  # support level from which an answer is called "well supported"


def support_summary(level: float | None, claims: int, unsupported: int) -> str:
    """One plain line on how well an answer is supported, e.g. "Partly supported: 2 of 3 sentences ..."."""
    if level is None or not claims:
        return ""
    supported = claims - unsupported
    if level >= WELL_SUPPORTED:
        head = "Well supported"
    elif supported:
        head = "Partly supported"
    else:
        head = "Not supported"
    return f"{head}: {supported} of {claims} sentence{'s' if claims != 1 else ''} backed by a retrieved passage."
