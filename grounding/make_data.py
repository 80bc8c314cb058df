"""Write the grounding training data: RAG prompts over fictional documents, answered only from the passages.

Run: .venv/bin/python grounding/make_data.py   (deterministic: same corpus + same seed -> same files)

Source: the hand-written documents in ``grounding/corpus/*.txt`` (fictional clubs, products, workplaces and
services; nothing about the product in ``sample_docs/``, so the evaluation there stays held out). Each
section is a short passage with its facts written out by hand as questions and answers (``Q:``/``A:``), and
each document lists questions it does not answer (``U:``).

Every example is ``rag_ft.chat.prompt.build_messages(question, passages)`` (the chat chain's own prompt, so
training and serving cannot drift) plus an assistant answer that uses only the passages and ends each
sentence with its [n] marker. Kinds of example:
- ``single``: the answer is in one passage, at a varied position (more often 2 or 3 than 1);
  the other passages are distractors on the same topic from other documents, or other sections of the same one;
- ``two``: a two-part question answered from two passages ("... [1] ... [3]");
- ``unanswerable`` (~20%): the passages are plausible (same document or same topic) but do not answer;
  the answer is exactly ``NOT_COVERED`` and cites nothing.
Two documents are held out entirely for the validation file (their text never appears in training).
"""

from __future__ import annotations

import json
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rag_ft.chat.prompt import NOT_COVERED, build_messages  # noqa: E402
from rag_ft.records import Passage  # noqa: E402

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
TRAIN_FILE = HERE / "train.jsonl"
VALIDATION_FILE = HERE / "validation.jsonl"
SEED = 20261125
VALIDATION_DOCS = ("kestrel_camera_manual.pdf", "larkspur_employee_guide.pdf")
# Where the answer sits among the passages: 1 is the least common, so the model learns to look past it.
POSITION_WEIGHTS = {1: 0.22, 2: 0.3, 3: 0.3, 4: 0.18}
SECOND_PHRASING = 0.15  # chance that a fact with two phrasings gets a second single-passage example
TWO_PASSAGE_SHARE = 0.12
UNANSWERABLE_SHARE = 0.25
# Retrieved chunks are ~500 characters: a heading, then several paragraphs, the answer often in the middle.
# So most passages start with their heading and carry a neighbouring section too.
LONG_PASSAGE = 0.4  # chance a passage also carries the previous or next section
HEADING = 0.7  # chance a passage starts with its section heading, as chunks do
LEADS = ("", "", "", "", "", "Quick question: ", "Can you tell me: ", "I need to know: ")


class CorpusError(ValueError):
    """A corpus file is malformed; the message names the file and line."""


@dataclass
class Fact:
    questions: list[str]
    answer: str


@dataclass
class Section:
    document: str
    title: str
    page: int | None
    topic: str
    text: str
    facts: list[Fact] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.document, self.title)


@dataclass
class Document:
    document: str
    title: str
    kind: str
    sections: list[Section] = field(default_factory=list)
    unanswerable: list[str] = field(default_factory=list)


@dataclass
class GroundingExample:
    kind: str  # single | two | unanswerable
    split: str  # train | validation
    question: str
    passages: list[Passage]
    answer: str
    answer_positions: list[int]  # 1-based passage numbers the answer cites (empty when unanswerable)

    @property
    def messages(self) -> list[dict[str, str]]:
        return [*build_messages(self.question, self.passages), {"role": "assistant", "content": self.answer}]

    def record(self) -> dict:
        return {"messages": self.messages}


def parse_document(path: Path) -> Document:
    """Read one corpus file (format: see any file in grounding/corpus)."""
    doc: Document | None = None
    header: dict[str, str] = {}
    section: Section | None = None
    pending_q: list[str] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        where = f"{path.name} line {n}"
        if not line:
            continue
        if doc is None and not line.startswith("## ") and ":" in line and not line.startswith(("Q:", "A:", "U:")):
            k, v = line.split(":", 1)
            header[k.strip()] = v.strip()
            continue
        if doc is None:
            missing = {"document", "title", "kind"} - header.keys()
            if missing:
                raise CorpusError(f"{where}: header lacks {', '.join(sorted(missing))}")
            doc = Document(header["document"], header["title"], header["kind"])
        if line.startswith("## "):
            if pending_q:
                raise CorpusError(f"{where}: questions without an A: line before a new section")
            section = Section(doc.document, line[3:].strip(), None, "", "")
            doc.sections.append(section)
        elif line.startswith("U:"):
            doc.unanswerable.append(line[2:].strip())
        elif section is None:
            raise CorpusError(f"{where}: text outside a section")
        elif line.startswith("page:"):
            section.page = int(line[5:])
        elif line.startswith("topic:"):
            section.topic = line[6:].strip()
        elif line.startswith("Q:"):
            pending_q.append(line[2:].strip())
        elif line.startswith("A:"):
            if not pending_q:
                raise CorpusError(f"{where}: an answer without a question")
            section.facts.append(Fact(pending_q, line[2:].strip()))
            pending_q = []
        else:
            if section.facts or pending_q:
                raise CorpusError(f"{where}: passage text after the questions")
            section.text = f"{section.text}\n{line}".strip()  # lines stay lines: lists and table rows
    if doc is None or not doc.sections:
        raise CorpusError(f"{path.name}: no sections")
    for s in doc.sections:
        if not (s.topic and s.text and s.facts):
            raise CorpusError(f"{path.name}, section {s.title!r}: needs topic, text and at least one Q/A")
    return doc


def load_corpus(folder: Path = CORPUS) -> list[Document]:
    return [parse_document(p) for p in sorted(folder.glob("*.txt"))]


def cite(answer: str, n: int) -> str:
    """Put [n] before the end of every sentence of the answer."""
    sentences = re.split(r"(?<=[.!?])\s+", answer.strip())
    out = []
    for s in sentences:
        m = re.search(r"[.!?]$", s)
        out.append(f"{s[:-1]} [{n}]{s[-1]}" if m else f"{s} [{n}]")
    return " ".join(out)


class Builder:
    def __init__(self, docs: list[Document], seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.docs = docs
        self.by_doc = {d.document: d for d in docs}

    def passages(self, order: list[Section], allow_long: bool = True) -> list[Passage]:
        """One passage per section; a neighbour joins only if no other passage shows it (chunks do not overlap)."""
        shown = {x.key for x in order}
        return [self.passage(x, allow_long, shown) for x in order]

    def passage(self, s: Section, allow_long: bool = True, shown: set | None = None) -> Passage:
        doc = self.by_doc[s.document]
        i = doc.sections.index(s)
        parts = [(s, self.rng.random() < HEADING)]
        shown = set() if shown is None else shown
        if allow_long and self.rng.random() < LONG_PASSAGE:
            j = i + self.rng.choice((-1, 1))
            if 0 <= j < len(doc.sections) and doc.sections[j].key not in shown:
                shown.add(doc.sections[j].key)
                neighbour = (doc.sections[j], True)
                parts = [neighbour, *parts] if j < i else [*parts, neighbour]
        text = "\n\n".join(f"{x.title}\n\n{x.text}" if heading else x.text for x, heading in parts)
        pages = sorted({x.page for x, _ in parts if x.page})
        score = round(self.rng.uniform(0.3, 0.8), 3)
        return Passage(text, s.document, pages, parts[0][0].title, doc.sections.index(parts[0][0]), score)

    def distractors(self, targets: list[Section], pool: list[Document], n: int, cross_entity: bool) -> list[Section]:
        """Plausible passages that do not hold the answer: same topic elsewhere, or other sections of the same doc."""
        exclude = {t.key for t in targets}
        # a long passage also shows the next section: keep a target's neighbours out, so no text shows twice
        for t in targets:
            secs = self.by_doc[t.document].sections
            i = secs.index(t)
            exclude.update(x.key for x in secs[max(i - 1, 0): i + 2])
        topics = {t.topic for t in targets}
        kinds = {self.by_doc[t.document].kind for t in targets}
        docs = {t.document for t in targets}
        same_topic = [s for d in pool if d.document not in docs for s in d.sections
                      if s.topic in topics and s.key not in exclude]
        same_doc = [s for d in pool if d.document in docs for s in d.sections if s.key not in exclude]
        same_kind = [s for d in pool if d.document not in docs and d.kind in kinds for s in d.sections
                     if s.key not in exclude]
        self.rng.shuffle(same_topic)
        self.rng.shuffle(same_doc)
        self.rng.shuffle(same_kind)
        n_topic = min(len(same_topic), self.rng.randint(1, 2) if cross_entity else 0)
        chosen = same_topic[:n_topic] + same_doc[: n - n_topic]
        for s in same_kind:  # top up when the document has few other sections
            if len(chosen) >= n:
                break
            if s not in chosen:
                chosen.append(s)
        return chosen[:n]

    def place(self, targets: list[Section], distractors: list[Section], positions: list[int]) -> list[Section]:
        total = len(targets) + len(distractors)
        slots: list[Section | None] = [None] * total
        for t, p in zip(targets, positions, strict=True):
            slots[p - 1] = t
        rest = iter(distractors)
        return [s if s is not None else next(rest) for s in slots]

    def apart(self, a: Section, b: Section) -> bool:
        """Two targets far enough apart in one document that a long passage of one never shows the other."""
        if a.document != b.document:
            return True
        secs = self.by_doc[a.document].sections
        return abs(secs.index(a) - secs.index(b)) > 1

    def n_passages(self) -> int:
        return 4 if self.rng.random() < 0.75 else 3

    def position(self, n: int) -> int:
        choices = [p for p in POSITION_WEIGHTS if p <= n]
        return self.rng.choices(choices, weights=[POSITION_WEIGHTS[p] for p in choices])[0]

    def phrase(self, question: str) -> str:
        lead = self.rng.choice(LEADS)
        return lead + lower_wh(question) if lead else question

    def single(self, s: Section, fact: Fact, question: str, pool: list[Document], split: str) -> GroundingExample:
        n = self.n_passages()
        pos = self.position(n)
        distract = self.distractors([s], pool, n - 1, cross_entity=self.rng.random() < 0.3)
        order = self.place([s], distract, [pos])
        passages = self.passages(order)
        return GroundingExample("single", split, self.phrase(question), passages, cite(fact.answer, pos), [pos])

    def two(self, a: tuple[Section, Fact], b: tuple[Section, Fact], pool: list[Document], split: str) -> GroundingExample:
        n = self.n_passages()
        pa, pb = sorted(self.rng.sample(range(1, n + 1), 2))
        if self.rng.random() < 0.5:
            pa, pb = pb, pa  # the first half of the question is not always in the earlier passage
        distract = self.distractors([a[0], b[0]], pool, n - 2, cross_entity=self.rng.random() < 0.3)
        order = self.place([a[0], b[0]], distract, [pa, pb])
        passages = self.passages(order, allow_long=self.apart(a[0], b[0]))
        q1, q2 = self.rng.choice(a[1].questions), self.rng.choice(b[1].questions)
        question = f"{q1.rstrip('?')}, and {lower_wh(q2)}"
        answer = f"{cite(a[1].answer, pa)} {cite(b[1].answer, pb)}"
        return GroundingExample("two", split, question, passages, answer, [pa, pb])

    def unanswerable(self, doc: Document, question: str, excluded: Section | None, pool: list[Document],
                     split: str) -> GroundingExample:
        n = self.n_passages()
        targets = [excluded] if excluded else []
        if excluded is None:
            # an unanswered question about this document: show its own sections (same entity, wrong topic)
            chosen = self.rng.sample(doc.sections, min(n, len(doc.sections)))
        else:
            # same entity, other topics: as in the app, where every passage comes from the user's documents
            chosen = self.distractors(targets, pool, n, cross_entity=False)
        passages = self.passages(chosen)
        return GroundingExample("unanswerable", split, self.phrase(question), passages, NOT_COVERED, [])


WH = {"How", "What", "When", "Where", "Which", "Who", "Why", "Is", "Are", "Can", "Do", "Does", "Until", "From", "On",
      "By"}


def lower_wh(q: str) -> str:
    first = q.split()[0]
    return q[0].lower() + q[1:] if first in WH else q


def build_examples(docs: list[Document] | None = None, seed: int = SEED) -> list[GroundingExample]:
    """All examples, train then validation, in a fixed order (the same every run)."""
    docs = load_corpus() if docs is None else docs
    b = Builder(docs, seed)
    out: list[GroundingExample] = []
    for split in ("train", "validation"):
        targets = [d for d in docs if (d.document in VALIDATION_DOCS) == (split == "validation")]
        pool = targets if split == "train" else docs  # training never shows a validation document
        facts = [(s, f) for d in targets for s in d.sections for f in s.facts]
        singles = []
        for s, f in facts:
            qs = list(f.questions)
            b.rng.shuffle(qs)
            singles.append(b.single(s, f, qs[0], pool, split))
            if len(qs) > 1 and b.rng.random() < SECOND_PHRASING:
                singles.append(b.single(s, f, qs[1], pool, split))
        n_two = round(len(singles) * TWO_PASSAGE_SHARE / (1 - TWO_PASSAGE_SHARE - UNANSWERABLE_SHARE))
        twos = []
        for _ in range(n_two):
            d = b.rng.choice(targets)
            s1, s2 = b.rng.sample(d.sections, 2)
            twos.append(b.two((s1, b.rng.choice(s1.facts)), (s2, b.rng.choice(s2.facts)), pool, split))
        answered = len(singles) + len(twos)
        n_un = round(answered * UNANSWERABLE_SHARE / (1 - UNANSWERABLE_SHARE))
        uns = [b.unanswerable(d, q, None, pool, split) for d in targets for q in d.unanswerable]
        while len(uns) < n_un:  # a real fact's question, with its own section left out
            s, f = b.rng.choice(facts)
            uns.append(b.unanswerable(b.by_doc[s.document], b.rng.choice(f.questions), s, pool, split))
        examples = singles + twos + uns
        b.rng.shuffle(examples)
        out.extend(examples)
    return out


def write(examples: list[GroundingExample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split, path in (("train", TRAIN_FILE), ("validation", VALIDATION_FILE)):
        rows = [e for e in examples if e.split == split]
        with path.open("w", encoding="utf-8") as f:
            for e in rows:
                f.write(json.dumps(e.record(), ensure_ascii=False) + "\n")
        counts[split] = len(rows)
    return counts


def main() -> None:
    examples = build_examples()
    counts = write(examples)
    for split in ("train", "validation"):
        rows = [e for e in examples if e.split == split]
        kinds = {k: sum(e.kind == k for e in rows) for k in ("single", "two", "unanswerable")}
        later = sum(1 for e in rows if e.answer_positions and max(e.answer_positions) >= 2)
        print(f"{split}: {counts[split]} examples {kinds}, answer in passage >= 2: {later}")


if __name__ == "__main__":
    main()
