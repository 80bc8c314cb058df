"""Evaluation sets, runs and their results in SQLite, and the runner that fills them.

An evaluation set is a list of questions with a reference answer and, where known, the document and
pages that hold the answer. A run sends every question through up to four configurations
(model x retrieval on/off x k x hybrid) and stores one row per question per configuration, with the
answer, its citations, timings, tokens and the per-answer metrics of ``rag_ft.evaluation.metrics``. Runs can be
stopped between answers and continued later: answers already stored are not asked again.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag_ft.chat.chain import is_not_covered
from rag_ft.db import connect, ensure_schema, transaction
from rag_ft.evaluation import metrics as m
from rag_ft.settings import ROOT

SAMPLE_QUESTIONS = ROOT / "sample_docs" / "questions.jsonl"
SAMPLE_SET_NAME = "Sample evaluation set"
MAX_CONFIGS = 4
DEFAULT_STYLE = r"\[Source: .+\]\s*$"

SCHEMA = """
CREATE TABLE IF NOT EXISTS eval_sets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    set_id INTEGER NOT NULL REFERENCES eval_sets(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '',
    document TEXT NOT NULL DEFAULT '',
    pages TEXT NOT NULL DEFAULT '[]',
    section TEXT NOT NULL DEFAULT '',
    answerable INTEGER NOT NULL DEFAULT 1,
    origin TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS eval_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    set_id INTEGER NOT NULL REFERENCES eval_sets(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    configs TEXT NOT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new',
    error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS eval_results (
    run_id INTEGER NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
    config_index INTEGER NOT NULL,
    question_id INTEGER NOT NULL,
    answer TEXT NOT NULL DEFAULT '',
    covered INTEGER NOT NULL DEFAULT 1,
    citations TEXT NOT NULL DEFAULT '[]',
    passages TEXT NOT NULL DEFAULT '[]',
    ttft_s REAL NOT NULL DEFAULT 0,
    total_s REAL NOT NULL DEFAULT 0,
    retrieval_s REAL NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, config_index, question_id)
);
"""


class EvalError(ValueError):
    """Bad input for an evaluation (file, configuration, format check); the message says what and where."""


# ---------------------------------------------------------------- records


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


@dataclass
class EvalSet:
    id: int
    name: str
    source: str
    created_at: str
    size: int = 0


@dataclass
class RunConfig:
    """One column of the comparison: a model from the picker, with or without retrieval."""

    label: str
    model: str  # a ModelChoice label from rag_ft.models.catalogue.available_models
    rag: bool = False
    k: int = 4
    hybrid: bool = True

    def describe(self) -> str:
        rag = f"RAG k={self.k}{', hybrid' if self.hybrid else ''}" if self.rag else "no retrieval"
        return f"{self.model} · {rag}"


@dataclass
class RunOptions:
    collection: str = "default"
    style_pattern: str = DEFAULT_STYLE  # the user's format check (regex, re.search); "" = none
    max_tokens: int = 128
    threshold: float | None = None  # None: the settings' relevance threshold
    judge: bool = False  # ask an OpenAI model for groundedness/relevance (a judgement, not a measurement)
    limit: int | None = None  # only the first N questions


@dataclass
class RunInfo:
    id: int
    set_id: int
    name: str
    configs: list[RunConfig]
    options: RunOptions
    status: str  # new | running | stopped | done | failed
    error: str
    created_at: str
    finished_at: str
    answered: int = 0


@dataclass
class AnswerRecord:
    """One question answered by one configuration, with everything measured about it."""

    config_index: int
    question_id: int
    answer: str = ""
    covered: bool = True
    citations: list[dict] = field(default_factory=list)
    passages: list[dict] = field(default_factory=list)
    ttft_s: float = 0.0
    total_s: float = 0.0
    retrieval_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
    return EvalQuestion(
        question=question.strip(),
        reference=str(reference).strip() if reference is not None else "",
        document=str(_pick(row, "document") or "").strip(),
        pages=parse_pages(_pick(row, "pages")),
        section=str(_pick(row, "section") or "").strip(),
        answerable=parse_bool(_pick(row, "answerable")),
        origin=origin,
    )


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
        writer.writerow(row)
    return out.getvalue()


# ---------------------------------------------------------------- the store


class EvalStore:
    """Evaluation sets, runs and results in the app's SQLite file (tables eval_*)."""

    def __init__(self, db_path: Path | str) -> None:
        self.conn = connect(db_path)
        ensure_schema(self.conn, SCHEMA)

    # sets
    def create_set(self, name: str, questions: Sequence[EvalQuestion], source: str = "") -> int:
        if not questions:
            raise EvalError("An evaluation set needs at least one question.")
        name = self._free_name(name.strip() or "Evaluation set")
        with transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO eval_sets(name, source, created_at) VALUES (?, ?, ?)", (name, source, _now())
            )
            set_id = int(cur.lastrowid)
            self.conn.executemany(
                "INSERT INTO eval_questions(set_id, position, question, reference, document, pages, section,"
                " answerable, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(set_id, i, q.question, q.reference, q.document, json.dumps(q.pages), q.section,
                  int(q.answerable), q.origin) for i, q in enumerate(questions)],
            )
        return set_id

    def _free_name(self, name: str) -> str:
        taken = {r[0] for r in self.conn.execute("SELECT name FROM eval_sets")}
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name} ({n})", n + 1
        return candidate

    def list_sets(self) -> list[EvalSet]:
        rows = self.conn.execute(
            "SELECT s.*, (SELECT COUNT(*) FROM eval_questions q WHERE q.set_id = s.id) AS size"
            " FROM eval_sets s ORDER BY s.id"
        ).fetchall()
        return [EvalSet(r["id"], r["name"], r["source"], r["created_at"], r["size"]) for r in rows]

    def find_set(self, name: str) -> EvalSet | None:
        return next((s for s in self.list_sets() if s.name == name), None)

    def questions(self, set_id: int) -> list[EvalQuestion]:
        rows = self.conn.execute(
            "SELECT * FROM eval_questions WHERE set_id = ? ORDER BY position", (set_id,)
        ).fetchall()
        return [EvalQuestion(r["question"], r["reference"], r["document"], json.loads(r["pages"]), r["section"],
                             bool(r["answerable"]), r["origin"], r["id"]) for r in rows]

    def delete_set(self, set_id: int) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM eval_sets WHERE id = ?", (set_id,))

    # runs
    def create_run(self, set_id: int, configs: Sequence[RunConfig], options: RunOptions, name: str = "") -> int:
        problems = check_configs(configs)
        if problems:
            raise EvalError(" ".join(problems))
        m.compile_style(options.style_pattern)  # a bad regex is refused before any model runs
        name = name or f"Run {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
        cur = self.conn.execute(
            "INSERT INTO eval_runs(set_id, name, configs, options, status, created_at) VALUES (?, ?, ?, ?, 'new', ?)",
            (set_id, name, json.dumps([asdict(c) for c in configs]), json.dumps(asdict(options)), _now()),
        )
        return int(cur.lastrowid)

    def _run(self, r: Any) -> RunInfo:
        return RunInfo(r["id"], r["set_id"], r["name"], [RunConfig(**c) for c in json.loads(r["configs"])],
                       RunOptions(**json.loads(r["options"])), r["status"], r["error"], r["created_at"],
                       r["finished_at"], r["answered"])

    _RUN_SQL = ("SELECT r.*, (SELECT COUNT(*) FROM eval_results x WHERE x.run_id = r.id) AS answered"
                " FROM eval_runs r")

    def get_run(self, run_id: int) -> RunInfo:
        row = self.conn.execute(f"{self._RUN_SQL} WHERE r.id = ?", (run_id,)).fetchone()
        if row is None:
            raise EvalError(f"There is no run {run_id}.")
        return self._run(row)

    def list_runs(self, set_id: int | None = None) -> list[RunInfo]:
        if set_id is None:
            rows = self.conn.execute(f"{self._RUN_SQL} ORDER BY r.id DESC").fetchall()
        else:
            rows = self.conn.execute(f"{self._RUN_SQL} WHERE r.set_id = ? ORDER BY r.id DESC", (set_id,)).fetchall()
        return [self._run(r) for r in rows]

    def set_status(self, run_id: int, status: str, error: str = "") -> None:
        finished = _now() if status in ("done", "stopped", "failed") else ""
        self.conn.execute("UPDATE eval_runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                          (status, error, finished, run_id))

    def delete_run(self, run_id: int) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM eval_runs WHERE id = ?", (run_id,))

    # results
    def save_result(self, run_id: int, rec: AnswerRecord) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO eval_results(run_id, config_index, question_id, answer, covered, citations,"
            " passages, ttft_s, total_s, retrieval_s, input_tokens, output_tokens, cost, metrics, error, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, rec.config_index, rec.question_id, rec.answer, int(rec.covered), json.dumps(rec.citations),
             json.dumps(rec.passages), rec.ttft_s, rec.total_s, rec.retrieval_s, rec.input_tokens,
             rec.output_tokens, rec.cost, json.dumps(rec.metrics), rec.error, _now()),
        )

    def results(self, run_id: int) -> list[AnswerRecord]:
        rows = self.conn.execute(
            "SELECT * FROM eval_results WHERE run_id = ? ORDER BY question_id, config_index", (run_id,)
        ).fetchall()
        return [AnswerRecord(r["config_index"], r["question_id"], r["answer"], bool(r["covered"]),
                             json.loads(r["citations"]), json.loads(r["passages"]), r["ttft_s"], r["total_s"],
                             r["retrieval_s"], r["input_tokens"], r["output_tokens"], r["cost"],
                             json.loads(r["metrics"]), r["error"]) for r in rows]

    def close(self) -> None:
        self.conn.close()


def import_sample_set(store: EvalStore, path: Path = SAMPLE_QUESTIONS) -> int:
    """The sample questions as "Sample evaluation set" (once: a second call returns the same set)."""
    existing = store.find_set(SAMPLE_SET_NAME)
    if existing:
        return existing.id
    if not path.exists():
        raise EvalError(f"The sample questions are missing ({path}).")
    parsed = parse_questions(path.read_bytes(), path.name)
    if parsed.problems:
        raise EvalError("The sample questions have problems: " + " ".join(parsed.problems[:5]))
    return store.create_set(SAMPLE_SET_NAME, parsed.questions, source=f"sample: {path.name}")


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
    try:
        row = conn.execute(
            "SELECT document, pages FROM chunks WHERE hash = ? ORDER BY (id = ?) DESC, (document_id = ?) DESC,"
            " (document = ?) DESC LIMIT 1", (chunk_hash, chunk_id, document_id, document)).fetchone()
    except Exception:  # no documents indexed yet: the chunks table does not exist
        return document, []
    if row is None:
        return document, []
    try:
        pages = parse_pages(json.loads(row["pages"] or "[]"))
    except (ValueError, TypeError):
        pages = []
    return row["document"] or document, pages


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


# ---------------------------------------------------------------- configurations


def check_configs(configs: Sequence[RunConfig]) -> list[str]:
    out = []
    if not configs:
        out.append("Choose at least one configuration.")
    if len(configs) > MAX_CONFIGS:
        out.append(f"At most {MAX_CONFIGS} configurations can be compared at once (got {len(configs)}).")
    labels = [c.label for c in configs]
    if len(set(labels)) != len(labels):
        out.append("Each configuration needs its own name.")
    for c in configs:
        if c.rag and not 1 <= c.k <= 20:
            out.append(f"{c.label}: k must be between 1 and 20 (got {c.k}).")
        if not c.model:
            out.append(f"{c.label}: choose a model.")
    return out


def default_configs(choices: Sequence[Any], k: int = 4, hybrid: bool = True) -> list[RunConfig]:
    """Base alone, base + RAG, tuned alone, tuned + RAG (tuned: the newest tuned model, else the grounding adapter).

    ``choices`` are rag_ft.models.catalogue.ModelChoice items (label, kind). Without any tuned model: the first two.
    """
    base = next((c for c in choices if c.kind == "base"), None) or (choices[0] if choices else None)
    if base is None:
        return []
    tuned_models = [c for c in choices if c.kind == "tuned"] or [c for c in choices if c.kind == "grounding"]
    out = [RunConfig("Base", base.label, False, k, hybrid), RunConfig("Base + RAG", base.label, True, k, hybrid)]
    if tuned_models:
        tuned = tuned_models[-1]
        out += [RunConfig("Tuned", tuned.label, False, k, hybrid), RunConfig("Tuned + RAG", tuned.label, True, k, hybrid)]
    return out


# ---------------------------------------------------------------- scoring one answer


def passage_dict(p: Any) -> dict[str, Any]:
    return {"document": p.document, "pages": list(p.pages), "section": p.section, "chunk_index": p.chunk_index,
            "score": round(float(p.score), 4), "text": p.text}


def citation_dict(c: Any) -> dict[str, Any]:
    from rag_ft.chat.citations import support

    return {"marker": c.marker, "document": c.passage.document, "pages": list(c.passage.pages),
            "section": c.passage.section, "supported": bool(c.supported), "attached": bool(c.attached),
            "support": [round(support(s, c.passage.text), 4) for s in c.sentences] or [round(float(c.support), 4)],
            "sentences": list(c.sentences)}


def _refs(items: Sequence[dict]) -> list[m.Ref]:
    return [m.Ref(d["document"], tuple(d.get("pages") or ())) for d in items]


def score_answer(
    q: EvalQuestion,
    cfg: RunConfig,
    rec: AnswerRecord,
    style: re.Pattern | None,
    similarity: float | None,
    removed_markers: int = 0,
) -> dict[str, Any]:
    """Per-answer metrics (see the README's definitions). None = does not apply to this answer."""
    out: dict[str, Any] = {}
    retrieved = _refs(rec.passages)
    if cfg.rag:
        out["doc_rank"] = m.first_relevant_rank(retrieved, q.document, q.pages, "document")
        out["page_rank"] = m.first_relevant_rank(retrieved, q.document, q.pages, "page")
        out["page_rank_near"] = m.first_relevant_rank(retrieved, q.document, q.pages, "page", tolerance=1)
        out["retrieval_applies"] = bool(q.answerable and q.document)
        out["page_applies"] = bool(q.answerable and q.document and q.pages)
        out["citation_precision"] = m.citation_precision(
            [(c["support"], not c["attached"]) for c in rec.citations], removed_markers)
        out["citation_recall"] = (m.citation_recall(_refs(rec.citations), q.document, q.pages)
                                  if q.answerable and rec.covered else None)
    # the chain flags "not covered" only with retrieval on; without it, read the model's own words
    said_not_covered = not rec.covered or is_not_covered(rec.answer)
    out["similarity"] = similarity
    out["f1"] = m.token_f1(m.strip_citations(rec.answer), q.reference) if q.answerable and q.reference else None
    # the format check applies to answers the model wrote, not to the app's "not covered" reply
    out["style"] = m.style_match(rec.answer, style) if style is not None and not said_not_covered else None
    out["not_covered"] = m.not_covered_correct(q.answerable, said_not_covered)
    out["wrong_refusal"] = said_not_covered if q.answerable else None
    return out


# ---------------------------------------------------------------- the runner


# OpenAI prices for ANSWERING, USD per 1M (input, output) tokens, standard tier, from openai.com/api/pricing
# (rag_ft.training.dataset.PRICES holds the TRAINING prices; same date). Fine-tuned models ("ft:<base>:...") cost more.
INFERENCE_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}
FINE_TUNED_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1-mini": (0.80, 3.20),
    "gpt-4.1-nano": (0.20, 0.80),
    "gpt-4.1": (3.00, 12.00),
    "gpt-4o-mini": (0.30, 1.20),
    "gpt-4o": (3.75, 15.00),
    "gpt-3.5-turbo": (3.00, 6.00),
}


def inference_price(model: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for an OpenAI model id; None when unknown."""
    table = INFERENCE_PRICES
    if model.startswith("ft:"):
        table, model = FINE_TUNED_PRICES, model.split(":")[1]
    for name in sorted(table, key=len, reverse=True):  # "gpt-4.1-mini" before "gpt-4.1"
        if model.startswith(name):
            return table[name]
    return None


def price_for(model: str, backend: str) -> tuple[float, float] | None:
    """Price of one model's answers; local models cost nothing here (None)."""
    return inference_price(model) if backend == "openai" else None


@dataclass
class Progress:
    done: int
    total: int
    message: str


class Evaluator:
    """Runs an evaluation set through the configurations of a run and stores every answer as it comes."""

    def __init__(
        self,
        store: EvalStore,
        embeddings: Any,
        model_factory: Callable[[RunConfig, int], Any],
        retriever: Any = None,
        judge_model: Any = None,
        threshold: float | None = None,
        backends: dict[str, str] | None = None,
    ) -> None:
        self.store, self.embeddings, self.model_factory = store, embeddings, model_factory
        self.retriever, self.judge_model, self.threshold = retriever, judge_model, threshold
        self.backends = backends or {}  # model label -> "local" | "openai" (for the price table)
        self._ref_vectors: dict[int, list[float]] = {}

    def run(
        self,
        run_id: int,
        progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RunInfo:
        """Answer every (question, configuration) not answered yet; stop between answers when asked."""
        from rag_ft.chat.chain import RagChain

        info = self.store.get_run(run_id)
        opts = info.options
        questions = self.store.questions(info.set_id)[: opts.limit or None]
        style = m.compile_style(opts.style_pattern)
        done = {(r.config_index, r.question_id) for r in self.store.results(run_id)}
        total = len(questions) * len(info.configs)
        count = sum(1 for q in questions for i in range(len(info.configs)) if (i, q.id) in done)
        self.store.set_status(run_id, "running")
        chains: dict[int, Any] = {}
        try:
            for q in questions:
                for i, cfg in enumerate(info.configs):
                    if (i, q.id) in done:
                        continue
                    if should_stop and should_stop():
                        self.store.set_status(run_id, "stopped")
                        return self.store.get_run(run_id)
                    if progress:
                        progress(Progress(count, total, f"{cfg.label}: {q.question}"))
                    rec = AnswerRecord(i, q.id or 0)
                    try:
                        if i not in chains:
                            model = self.model_factory(cfg, opts.max_tokens)
                            retriever = self.retriever if cfg.rag else None
                            if cfg.rag and retriever is None:
                                raise EvalError("Retrieval is on but no document index is available.")
                            chains[i] = RagChain(model, retriever, k=cfg.k, threshold=self.threshold,
                                                 collection=opts.collection, model_label=cfg.model,
                                                 hybrid=cfg.hybrid if cfg.rag else None)
                        self._answer(chains[i], q, cfg, rec, style, opts)
                    except Exception as exc:  # one failed answer is recorded, the run goes on
                        from rag_ft.chat.chain import explain_error

                        rec.error = str(exc) if isinstance(exc, EvalError) else explain_error(exc)
                        rec.metrics = {}
                    self.store.save_result(run_id, rec)
                    count += 1
            if progress:
                progress(Progress(count, total, "Finished"))
            self.store.set_status(run_id, "done")
        except BaseException as exc:  # e.g. Streamlit stopping the script: what is stored stays stored
            self.store.set_status(run_id, "stopped" if not isinstance(exc, Exception) else "failed", str(exc)[:300])
            raise
        return self.store.get_run(run_id)

    def _answer(self, chain: Any, q: EvalQuestion, cfg: RunConfig, rec: AnswerRecord, style: re.Pattern | None,
                opts: RunOptions) -> None:
        from rag_ft.chat.chain import ChainError

        try:
            result = chain.run(q.question)
        except ChainError as exc:
            rec.answer, rec.error = exc.partial, str(exc)
            return
        rec.answer, rec.covered = result.text, result.covered
        rec.passages = [passage_dict(p) for p in result.passages]
        rec.citations = [citation_dict(c) for c in result.citations]
        rec.ttft_s, rec.total_s, rec.retrieval_s = result.ttft_s, result.total_s, result.retrieval_s
        rec.input_tokens, rec.output_tokens = result.input_tokens, result.output_tokens
        rec.cost = m.estimate_cost(rec.input_tokens, rec.output_tokens,
                                   price_for(cfg.model, self.backends.get(cfg.model, "local")))
        similarity = self._similarity(q, rec.answer) if q.answerable and q.reference else None
        rec.metrics = score_answer(q, cfg, rec, style, similarity, len(result.removed_markers))
        if opts.judge and self.judge_model is not None:
            rec.metrics.update(judge_answer(self.judge_model, q.question, rec.answer, rec.passages))

    def _similarity(self, q: EvalQuestion, answer: str) -> float | None:
        if self.embeddings is None or not answer.strip():
            return None
        key = q.id or 0
        if key not in self._ref_vectors:
            self._ref_vectors[key] = self.embeddings.embed_query(m.strip_citations(q.reference))
        vector = self.embeddings.embed_query(m.strip_citations(answer) or answer)
        return round(m.cosine(vector, self._ref_vectors[key]), 4)


# ---------------------------------------------------------------- the optional LLM judge

JUDGE_PROMPT = """You grade an answer to a question. Reply with JSON only, like {{"groundedness": 4, "relevance": 5}}.
groundedness (1-5): how far every claim in the answer is supported by the passages (5 = all supported;
if there are no passages, how far the answer avoids unsupported claims).
relevance (1-5): how directly the answer addresses the question (5 = fully).

Question: {question}

Passages:
{passages}

Answer: {answer}"""


def judge_answer(model: Any, question: str, answer: str, passages: Sequence[dict]) -> dict[str, Any]:
    """An LLM's judgement of groundedness and relevance (1-5): a judgement, not a measurement."""
    block = "\n\n".join(f"[{i}] {p['text'][:1500]}" for i, p in enumerate(passages, 1)) or "(none)"
    prompt = JUDGE_PROMPT.format(question=question, passages=block, answer=answer or "(empty)")
    try:
        reply = model.invoke(prompt).content
    except Exception as exc:
        from rag_ft.chat.chain import explain_error

        return {"judge_error": explain_error(exc)}
    scores = parse_judgement(reply if isinstance(reply, str) else str(reply))
    if scores is None:
        return {"judge_error": f"The judge's reply was not the JSON asked for: {str(reply)[:120]!r}"}
    return {"judge_groundedness": scores[0], "judge_relevance": scores[1]}


def parse_judgement(text: str) -> tuple[int, int] | None:
    """(groundedness, relevance) from the judge's reply, each 1-5; None when the reply has no valid pair."""
    match = re.search(r"\{.*?\}", text, re.S)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
        g, r = int(data["groundedness"]), int(data["relevance"])
    except (ValueError, KeyError, TypeError):
        return None
    if not (1 <= g <= 5 and 1 <= r <= 5):
        return None
    return g, r


# ---------------------------------------------------------------- aggregation and summary

# key, column label, kind (fraction | seconds | tokens | dollars | score), higher is better
METRICS: list[tuple[str, str, str, bool]] = [
    ("doc_hit", "Document hit@k", "fraction", True),
    ("doc_mrr", "Document MRR", "fraction", True),
    ("page_hit", "Page hit@k", "fraction", True),
    ("page_mrr", "Page MRR", "fraction", True),
    ("page_hit_near", "Page hit@k (±1 page)", "fraction", True),
    ("page_mrr_near", "Page MRR (±1 page)", "fraction", True),
    ("citation_precision", "Citation precision", "fraction", True),
    ("citation_recall", "Citation recall", "fraction", True),
    ("similarity", "Answer similarity", "fraction", True),
    ("f1", "Token F1", "fraction", True),
    ("style", "Follows format", "fraction", True),
    ("not_covered", "'Not covered' on unanswerable", "fraction", True),
    ("wrong_refusal", "'Not covered' on answerable", "fraction", False),
    ("ttft_s", "Time to first token (s)", "seconds", False),
    ("total_s", "Total latency (s)", "seconds", False),
    ("total_p95_s", "Total latency p95 (s)", "seconds", False),
    ("input_tokens", "Input tokens", "tokens", False),
    ("output_tokens", "Output tokens", "tokens", False),
    ("cost", "Cost per answer ($)", "dollars", False),
    ("judge_groundedness", "LLM judgement: groundedness (1-5)", "score", True),
    ("judge_relevance", "LLM judgement: relevance (1-5)", "score", True),
]
LABELS = {key: label for key, label, _, _ in METRICS}


def aggregate(records: Sequence[AnswerRecord], cfg: RunConfig) -> dict[str, Any]:
    """One configuration's numbers over the answers it gave (errors are counted, not scored)."""
    ok = [r for r in records if not r.error]
    mx = [r.metrics for r in ok]
    out: dict[str, Any] = {"answers": len(ok), "errors": len(records) - len(ok)}
    if cfg.rag:
        doc = [x.get("doc_rank") for x in mx if x.get("retrieval_applies")]
        page = [x.get("page_rank") for x in mx if x.get("page_applies")]
        near = [x.get("page_rank_near") for x in mx if x.get("page_applies")]
        out["doc_hit"] = m.mean(m.hit_at_k(r, cfg.k) for r in doc)
        out["doc_mrr"] = m.mean(m.reciprocal_rank(r) for r in doc)
        out["page_hit"] = m.mean(m.hit_at_k(r, cfg.k) for r in page)
        out["page_mrr"] = m.mean(m.reciprocal_rank(r) for r in page)
        out["page_hit_near"] = m.mean(m.hit_at_k(r, cfg.k) for r in near)
        out["page_mrr_near"] = m.mean(m.reciprocal_rank(r) for r in near)
        out["citation_precision"] = m.mean(x.get("citation_precision") for x in mx)
        out["citation_recall"] = m.mean(x.get("citation_recall") for x in mx)
    for key in ("similarity", "f1", "style", "not_covered", "wrong_refusal", "judge_groundedness", "judge_relevance"):
        out[key] = m.mean(x.get(key) for x in mx)
    timed = [r for r in ok if r.total_s > 0]
    out["ttft_s"] = m.mean(r.ttft_s for r in timed if r.ttft_s > 0)
    out["total_s"] = m.mean(r.total_s for r in timed)
    out["total_p95_s"] = m.percentile([r.total_s for r in timed], 95)
    out["input_tokens"] = m.mean(r.input_tokens for r in ok)
    out["output_tokens"] = m.mean(r.output_tokens for r in ok)
    out["cost"] = m.mean(r.cost for r in ok)
    return out


def summary_table(info: RunInfo, records: Sequence[AnswerRecord]) -> list[dict[str, Any]]:
    """One row per configuration: its name, description and every aggregated metric."""
    rows = []
    for i, cfg in enumerate(info.configs):
        agg = aggregate([r for r in records if r.config_index == i], cfg)
        rows.append({"configuration": cfg.label, "setup": cfg.describe(), **agg})
    return rows


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def plain_summary(info: RunInfo, rows: Sequence[dict[str, Any]]) -> list[str]:
    """What the numbers say, in sentences a user can act on."""
    out: list[str] = []
    configs = info.configs
    by_label = {r["configuration"]: r for r in rows}
    for cfg in configs:
        if not cfg.rag:
            continue
        row = by_label[cfg.label]
        if row.get("page_hit") is not None:
            out.append(f"{cfg.label}: retrieval put an expected page in the top {cfg.k} for {_pct(row['page_hit'])} "
                       f"of the questions with known pages (within one page: {_pct(row.get('page_hit_near'))}; "
                       f"right document: {_pct(row.get('doc_hit'))}).")
        elif row.get("doc_hit") is not None:
            out.append(f"{cfg.label}: retrieval found the expected document in the top {cfg.k} for "
                       f"{_pct(row['doc_hit'])} of the questions.")
        # the same model without retrieval: what did RAG change?
        plain = next((c for c in configs if c.model == cfg.model and not c.rag), None)
        if plain:
            before, after = by_label[plain.label], row
            for key, what in (("f1", "token F1"), ("similarity", "answer similarity")):
                b, a = before.get(key), after.get(key)
                if b is not None and a is not None:
                    verb = "raised" if a > b else "lowered" if a < b else "left"
                    tail = "unchanged at " + _num(a) if verb == "left" else f"from {_num(b)} to {_num(a)}"
                    out.append(f"With {cfg.model}, RAG {verb} {what} {tail}.")
                    break
            if before.get("total_s") and after.get("total_s"):
                out.append(f"With {cfg.model}, RAG changed the mean answer time from {before['total_s']:.1f} s "
                           f"to {after['total_s']:.1f} s.")
    # two RAG configurations that differ only in hybrid search
    rags = [c for c in configs if c.rag]
    for a in rags:
        for b in rags:
            if a.model == b.model and a.k == b.k and not a.hybrid and b.hybrid:
                x, y = by_label[a.label].get("page_hit"), by_label[b.label].get("page_hit")
                if x is not None and y is not None:
                    out.append(f"Hybrid search changed page hit@{a.k} from {_pct(x)} to {_pct(y)}.")
    styled = [(c, by_label[c.label].get("style")) for c in configs if by_label[c.label].get("style") is not None]
    if styled:
        parts = ", ".join(f"{c.label} {_pct(v)}" for c, v in styled)
        out.append(f"Answers that follow your format ({info.options.style_pattern}): {parts}.")
    refusals = [(c, by_label[c.label].get("not_covered")) for c in configs
                if by_label[c.label].get("not_covered") is not None]
    if refusals:
        parts = ", ".join(f"{c.label} {_pct(v)}" for c, v in refusals)
        out.append(f"On the questions your documents cannot answer, 'not covered' was said by: {parts}.")
    costs = [(c, by_label[c.label].get("cost") or 0.0) for c in configs]
    if any(v > 0 for _, v in costs):
        parts = ", ".join(f"{c.label} ${1000 * v:.2f}" for c, v in costs)
        out.append(f"Estimated cost per 1,000 answers: {parts}.")
    elif costs:
        out.append("All answers came from local models: no per-token cost.")
    errors = sum(by_label[c.label].get("errors", 0) for c in configs)
    if errors:
        out.append(f"{errors} answer(s) failed; their errors are in the table below and they are not scored.")
    return out


def results_rows(info: RunInfo, questions: Sequence[EvalQuestion], records: Sequence[AnswerRecord]) -> list[dict]:
    """One flat row per answer, for the table and the CSV export."""
    by_id = {q.id: q for q in questions}
    rows = []
    for r in records:
        q = by_id.get(r.question_id)
        cfg = info.configs[r.config_index]
        mx = r.metrics
        rows.append({
            "question": q.question if q else "", "answerable": q.answerable if q else None,
            "expected document": q.document if q else "", "expected pages": ",".join(map(str, q.pages)) if q else "",
            "configuration": cfg.label, "model": cfg.model, "rag": cfg.rag, "k": cfg.k if cfg.rag else None,
            "answer": r.answer, "covered": r.covered,
            "cited": "; ".join(f"[{c['marker']}] {c['document']} {','.join(map(str, c['pages']))}".strip()
                               for c in r.citations),
            "document rank": mx.get("doc_rank"), "page rank": mx.get("page_rank"),
            "page rank ±1": mx.get("page_rank_near"),
            "citation precision": mx.get("citation_precision"), "citation recall": mx.get("citation_recall"),
            "similarity": mx.get("similarity"), "token F1": mx.get("f1"), "follows format": mx.get("style"),
            "ttft (s)": round(r.ttft_s, 3), "total (s)": round(r.total_s, 3),
            "input tokens": r.input_tokens, "output tokens": r.output_tokens, "cost ($)": r.cost,
            "judge groundedness": mx.get("judge_groundedness"), "judge relevance": mx.get("judge_relevance"),
            "error": r.error,
        })
    return rows


def rows_to_csv(rows: Sequence[dict]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
