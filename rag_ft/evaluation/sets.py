"""Evaluation questions and sets: the records, reading and writing question files, sets from training examples.

A question file is JSONL, JSON (a list) or CSV with a ``question`` column; the other fields (reference
answer, expected document and pages, section, answerable) are optional and read under several usual names.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_ft.evaluation.metrics import Ref
from rag_ft.index import chunks as chunk_rows
from rag_ft.settings import ROOT
from rag_ft.untrusted import csv_cell

SAMPLE_QUESTIONS = ROOT / "sample_docs" / "questions.jsonl"
SAMPLE_SET_NAME = "Sample evaluation set"


class EvalError(ValueError):
    """Bad input for an evaluation (file, configuration, format check); the message says what and where."""


@dataclass
class EvalQuestion:
    question: str
    reference: str = ""  # the reference answer
    document: str = ""  # expected document (file name), "" = unknown
    pages: list[int] = field(default_factory=list)  # expected pages, [] = unknown
    section: str = ""
    answerable: bool = True  # False: the documents do not hold the answer; "not covered" is correct
    origin: str = ""  # where it came from (file and line, example id, chunk hash)
    id: int | None = None
    # every expected (document, pages) when the row names them as `source_docs` or `citations` (possibly several
    # documents; `document`/`pages` then hold the first); [] = just `document`/`pages`. Not stored in sets.
    expected: list[Ref] = field(default_factory=list)


@dataclass
class EvalSet:
    id: int
    name: str
    source: str
    created_at: str
    size: int = 0


# ---------------------------------------------------------------- import / export


FIELD_ALIASES = {
    "question": ("question", "q", "query", "prompt"),
    "reference": ("answer", "reference", "reference_answer", "expected_answer", "ground_truth"),
    "document": ("document", "doc", "source", "expected_document", "file"),
    "pages": ("pages", "page", "expected_pages"),
    "section": ("section",),
    "answerable": ("answerable",),
}
TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f"}


def _pick(row: dict[str, Any], name: str) -> Any:
    lower = {str(k).strip().lower(): v for k, v in row.items()}
    for alias in FIELD_ALIASES[name]:
        if alias in lower and lower[alias] not in (None, ""):
            return lower[alias]
    return None


def parse_pages(value: Any) -> list[int]:
    """Pages as a list: 3, [3, 4], "3", "3,4", "3-5", "p. 3" -> sorted unique ints. Raises ValueError."""
    if value is None or value == "":
        return []
    if isinstance(value, bool):
        raise ValueError(f"pages must be numbers, got {value!r}")
    if isinstance(value, int | float):
        return [int(value)]
    if isinstance(value, list):
        return sorted({p for v in value for p in parse_pages(v)})
    text = re.sub(r"^(pp?\.?|pages?)\s*", "", str(value).strip(), flags=re.I)
    out: set[int] = set()
    for part in re.split(r"[,;\s]+", text):
        if not part:
            continue
        span = re.fullmatch(r"(\d+)\s*[-–]\s*(\d+)", part)
        if span:
            lo, hi = int(span.group(1)), int(span.group(2))
            if hi < lo or hi - lo > 500:
                raise ValueError(f"page range {part!r} is not valid")
            out.update(range(lo, hi + 1))
        elif part.isdigit():
            out.add(int(part))
        else:
            raise ValueError(f"pages must be numbers like 3, 3-5 or [3, 4], got {value!r}")
    return sorted(out)


def parse_bool(value: Any, default: bool = True) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"answerable must be true/false (or yes/no, 1/0), got {value!r}")


def question_from_row(row: dict[str, Any], origin: str) -> EvalQuestion:
    """One question from a JSON object or CSV row; raises ValueError with the reason."""
    if not isinstance(row, dict):
        raise ValueError(f"expected an object with a 'question', got {type(row).__name__}")
    question = _pick(row, "question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("no 'question' (a non-empty text) in this row")
    reference = _pick(row, "reference")
    document, pages = str(_pick(row, "document") or "").strip(), parse_pages(_pick(row, "pages"))
    expected = expected_sources(row)
    if expected and not document:
        document, pages = expected[0].document, list(expected[0].pages)
    return EvalQuestion(
        question=question.strip(),
        reference=str(reference).strip() if reference is not None else "",
        document=document,
        pages=pages,
        section=str(_pick(row, "section") or "").strip(),
        answerable=parse_bool(_pick(row, "answerable")),
        origin=origin,
        expected=expected,
    )


def expected_sources(row: dict[str, Any]) -> list[Ref]:
    """Expected documents given as ``source_docs`` (file names) or ``citations`` ([{"doc", "page"}]), in order.

    Other question sets name their ground truth this way (e.g. a multi-document question lists several
    filings). A CSV cell holds a JSON list, or names separated by ";". Raises ValueError with the reason.
    """
    lower = {str(k).strip().lower(): v for k, v in row.items()}
    docs, cites = lower.get("source_docs"), lower.get("citations")
    if isinstance(docs, str) and docs.strip():
        docs = json.loads(docs) if docs.strip().startswith("[") else docs.split(";")
    if isinstance(cites, str) and cites.strip():
        cites = json.loads(cites)
    pages_of: dict[str, set[int]] = {}
    if docs:
        if not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
            raise ValueError("source_docs must be a list of file names")
        for d in docs:
            if d.strip():
                pages_of.setdefault(d.strip(), set())
    if cites:
        if not isinstance(cites, list) or not all(isinstance(c, dict) for c in cites):
            raise ValueError('citations must be a list of {"doc": name, "page": number}')
        for c in cites:
            name = str(c.get("doc") or c.get("document") or "").strip()
            if not name:
                raise ValueError('each citation needs a "doc" (a file name)')
            pages_of.setdefault(name, set()).update(parse_pages(c.get("page", c.get("pages"))))
    return [Ref(name, tuple(sorted(pages))) for name, pages in pages_of.items()]


@dataclass
class ParseResult:
    questions: list[EvalQuestion]
    problems: list[str]  # "questions.csv line 4: no 'question' ..." for each row left out


def parse_questions(data: bytes | str, filename: str) -> ParseResult:
    """Questions from a JSONL, JSON (a list) or CSV file. Bad rows are reported by line and left out."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise EvalError(f"{filename} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    else:
        text = data
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        return _parse_csv(text, filename)
    if suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{filename} is not valid JSON: {exc.msg} at line {exc.lineno}.") from exc
        if not isinstance(rows, list):
            raise EvalError(f"{filename} must hold a list of question objects.")
        return _collect(((i, r) for i, r in enumerate(rows, 1)), filename, "item")
    if suffix in (".jsonl", ".ndjson", ""):
        return _parse_jsonl(text, filename)
    raise EvalError(f"{filename}: use a .jsonl, .json or .csv file (got {suffix}).")


def _parse_jsonl(text: str, filename: str) -> ParseResult:
    rows, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"{filename} line {n}: not valid JSON ({exc.msg}).")
    result = _collect(rows, filename, "line")
    result.problems[:0] = problems
    return result


def _parse_csv(text: str, filename: str) -> ParseResult:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not any(
        (f or "").strip().lower() in FIELD_ALIASES["question"] for f in reader.fieldnames
    ):
        raise EvalError(f"{filename}: the first line must be a header with a 'question' column.")
    # line numbers as a spreadsheet shows them: the header is line 1
    return _collect(((reader.line_num, row) for row in reader), filename, "line")


def _collect(rows: Any, filename: str, unit: str) -> ParseResult:
    questions, problems = [], []
    for n, row in rows:
        try:
            questions.append(question_from_row(row, f"{filename}:{n}"))
        except ValueError as exc:
            problems.append(f"{filename} {unit} {n}: {exc}.")
    if not questions and not problems:
        problems.append(f"{filename} holds no questions.")
    return ParseResult(questions, problems)


def question_dict(q: EvalQuestion) -> dict[str, Any]:
    """The export format: the same fields the import reads (sample_docs/questions.jsonl's format)."""
    return {"question": q.question, "answer": q.reference, "document": q.document, "pages": q.pages,
            "section": q.section, "answerable": q.answerable}


def export_jsonl(questions: Sequence[EvalQuestion]) -> str:
    return "".join(json.dumps(question_dict(q), ensure_ascii=False) + "\n" for q in questions)


def export_csv(questions: Sequence[EvalQuestion]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["question", "answer", "document", "pages", "section", "answerable"])
    writer.writeheader()
    for q in questions:
        row = question_dict(q)
        row["pages"] = ",".join(str(p) for p in q.pages)
        # a question or answer from a document or a model may start like a formula (=HYPERLINK(...), +cmd|...)
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
    return out.getvalue()


# ---------------------------------------------------------------- sets from the training data

QUESTION_LINE = re.compile(r"(?:^|\n)\s*Question:\s*(.+?)\s*$", re.S)


def question_of(user_message: str) -> str:
    """The question inside a RAG-style user message ("Passages: ... Question: ..."), else the message itself."""
    match = QUESTION_LINE.search(user_message)
    return (match.group(1) if match else user_message).strip()


def _chunk_pages(conn: Any, chunk_hash: str, chunk_id: str, document_id: str, document: str) -> tuple[str, list[int]]:
    """Document name and pages of the chunk an example was generated from (from the documents' tables).

    Found by content hash (the chunk id changes when a document is re-indexed; equal text keeps its hash),
    preferring the same chunk id, then the same document.
    """
    found = chunk_rows.find_by_hash(conn, chunk_hash, chunk_id, document_id, document)
    if found is None:
        return document, []
    try:
        pages = parse_pages(found.pages)
    except (ValueError, TypeError):
        pages = []
    return found.document or document, pages


def questions_from_examples(db_path: Path | str, kind: str = "generated", limit: int | None = None) -> list[EvalQuestion]:
    """Evaluation questions from the training data.

    ``kind="generated"``: approved or draft examples generated from document chunks; their provenance
    (document + chunk hash) gives the expected document and pages, so retrieval ground truth is free.
    ``kind="held_out"``: approved examples in the validation split (never trained on by the local
    trainer), with their document when they have one.
    """
    from rag_ft.training.examples import ExampleStore

    store = ExampleStore(db_path)
    try:
        if kind == "generated":
            examples = store.list(status=["approved", "draft"], source="generated")
        elif kind == "held_out":
            examples = store.list(status="approved", split="validation")
        else:
            raise EvalError(f"Unknown kind {kind!r}: use 'generated' or 'held_out'.")
        out = []
        for ex in examples:
            question, answer = question_of(ex.user), ex.assistant
            if not question or not answer:
                continue
            document, pages = ex.document, []
            if ex.chunk_hash:
                document, pages = _chunk_pages(store.conn, ex.chunk_hash, ex.chunk_id, ex.document_id, ex.document)
            answerable = "do not cover" not in answer.lower()
            out.append(EvalQuestion(question, answer, document if answerable else "", pages if answerable else [],
                                    ex.section, answerable, f"example {ex.id}"
                                    + (f" (chunk {ex.chunk_hash[:8]})" if ex.chunk_hash else "")))
            if limit and len(out) >= limit:
                break
        return out
    finally:
        store.close()
