"""What the Compare page's controls decide, without Streamlit: importing a set, checking a form, a stop, which
answers to show. The page lays out widgets and calls these; their texts are raw (the page makes them inert).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag_ft.evaluation.configs import RunConfig, chat_default, check_configs
from rag_ft.evaluation.estimate import Estimate
from rag_ft.evaluation.metrics import compile_style
from rag_ft.evaluation.sets import (
    EvalError,
    EvalQuestion,
    parse_questions,
    question_dict,
    questions_from_examples,
)
from rag_ft.evaluation.store import AnswerRecord, EvalStore, import_sample_set

Message = tuple[str, str]  # (kind: success | warning | error | info, text)


def import_file(store: EvalStore, data: bytes, filename: str, shown: int = 20) -> tuple[int | None, list[Message]]:
    """A questions file as a new set: (its id or None, messages). Bad rows are named (the first ``shown``)."""
    try:
        parsed = parse_questions(data, filename)
    except EvalError as exc:
        return None, [("error", str(exc))]
    messages: list[Message] = [("warning", p) for p in parsed.problems[:shown]]
    if not parsed.questions:
        return None, messages
    set_id = store.create_set(filename.rsplit(".", 1)[0], parsed.questions, source=f"import: {filename}")
    left = f" ({len(parsed.problems)} row(s) left out, listed above)" if parsed.problems else ""
    messages.append(("success", f"Imported {len(parsed.questions)} questions from {filename}{left}."))
    return set_id, messages


def sample_set(store: EvalStore) -> tuple[int | None, list[Message]]:
    """The sample questions as a set (once): (its id or None, messages)."""
    try:
        return import_sample_set(store), [("success", "Loaded the sample evaluation set.")]
    except EvalError as exc:
        return None, [("error", str(exc))]


def question_rows(questions: Sequence[EvalQuestion]) -> list[dict]:
    """The set's questions as table rows (the export fields, pages as "3, 4")."""
    return [{**question_dict(q), "pages": ", ".join(map(str, q.pages))} for q in questions]


def set_from_examples(store: EvalStore, db_path: Path | str, kind: str) -> int | None:
    """A set from the training data ("generated" or "held_out"); None when there are no such examples."""
    questions = questions_from_examples(db_path, kind)
    if not questions:
        return None
    name = "From generated examples" if kind == "generated" else "Held-out examples"
    return store.create_set(name, questions, source=f"training data: {kind}")


def form_problems(configs: Sequence[RunConfig], style: str) -> list[str]:
    """Everything that blocks the Run button: the configurations' problems, then a bad format check."""
    problems = check_configs(configs)
    try:
        compile_style(style)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def mark_stopped(store: EvalStore, run_id: int) -> str | None:
    """A run the page was running when the user clicked (Stop or any widget) is stopped; the sentence to show."""
    info = store.get_run(run_id)
    if info.status not in ("running", "new"):
        return None
    store.set_status(run_id, "stopped")
    return f"Stopped after {info.answered} answers. Continue the run below whenever you like."


def chat_default_line(configs: Sequence[RunConfig], choices: Sequence[Any]) -> str:
    """Which configuration answers as Chat does by default (``choices``: available_models, Chat's default first)."""
    if not choices:
        return ""
    cfg = chat_default(configs, choices)
    where = f"that is configuration {cfg.label}." if cfg else "not among these configurations."
    return f"Chat answers with {choices[0].label} and RAG by default: {where}"


def estimate_caption(guess: Estimate) -> str:
    """The sentence beside the Run button ("" when there is nothing to run)."""
    if not guess.answers:
        return ""
    basis = "measured on this machine" if guess.measured else "a first guess until a run is measured here"
    return f"{guess.text()} ({guess.answers} answers; time per answer {basis}). Stop keeps what is done."


def answered_questions(questions: Sequence[EvalQuestion], records: Sequence[AnswerRecord]) -> list[EvalQuestion]:
    """The questions of a run with at least one answer, in set order."""
    answered = {r.question_id for r in records}
    return [q for q in questions if q.id in answered]


def answer_of(records: Sequence[AnswerRecord], question_id: int, config_index: int) -> AnswerRecord | None:
    return next((r for r in records if r.question_id == question_id and r.config_index == config_index), None)


def expected_where(q: EvalQuestion) -> str:
    """"handbook.pdf p. 4, 5": where the answer should be found ("" when unknown)."""
    pages = f"p. {', '.join(map(str, q.pages))}" if q.pages else ""
    return f"{q.document} {pages}".strip()


def citation_line(citation: dict) -> str:
    """"[2] handbook.pdf p. 4": one citation under an answer."""
    pages = ", ".join(map(str, citation["pages"]))
    return f"[{citation['marker']}] {citation['document']}{' p. ' + pages if pages else ''}"
