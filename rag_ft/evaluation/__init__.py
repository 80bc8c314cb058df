"""Evaluation: question sets, runs that compare up to four configurations, and their results.

An evaluation set is a list of questions with a reference answer and, where known, the document and
pages that hold the answer. A run sends every question through up to four configurations
(model x retrieval on/off x k x hybrid) and stores one row per question per configuration, with the
answer, its citations, timings, tokens and the per-answer metrics of ``rag_ft.evaluation.metrics``.

Modules: ``sets`` (questions, question files, sets from training examples), ``configs`` (run
configurations and options), ``store`` (the eval_* tables), ``runner`` (answering and scoring),
``judge`` (the optional LLM judge), ``report`` (aggregates, summary, CSV, what the page shows),
``estimate`` (a run's time before it starts), ``workflow`` (the Compare page's decisions). The names the pages and
tests use are re-exported here, so ``from rag_ft import evaluation as ev; ev.EvalStore`` works.
"""

from rag_ft.evaluation.configs import (
    DEFAULT_STYLE,
    MAX_CONFIGS,
    RunConfig,
    RunOptions,
    check_configs,
    default_configs,
)
from rag_ft.evaluation.judge import judge_answer, parse_judgement
from rag_ft.evaluation.report import (
    LABELS,
    METRICS,
    aggregate,
    plain_summary,
    results_rows,
    rows_to_csv,
    summary_table,
)
from rag_ft.evaluation.runner import Evaluator, Progress, citation_dict, passage_dict, score_answer
from rag_ft.evaluation.sets import (
    SAMPLE_QUESTIONS,
    SAMPLE_SET_NAME,
    EvalError,
    EvalQuestion,
    EvalSet,
    ParseResult,
    export_csv,
    export_jsonl,
    parse_bool,
    parse_pages,
    parse_questions,
    question_dict,
    question_from_row,
    question_of,
    questions_from_examples,
)
from rag_ft.evaluation.store import AnswerRecord, EvalStore, RunInfo, import_sample_set

__all__ = [
    "DEFAULT_STYLE", "LABELS", "MAX_CONFIGS", "METRICS", "SAMPLE_QUESTIONS", "SAMPLE_SET_NAME",
    "AnswerRecord", "EvalError", "EvalQuestion", "EvalSet", "EvalStore", "Evaluator", "ParseResult", "Progress",
    "RunConfig", "RunInfo", "RunOptions",
    "aggregate", "check_configs", "citation_dict", "default_configs", "export_csv", "export_jsonl",
    "import_sample_set", "judge_answer", "parse_bool", "parse_judgement", "parse_pages", "parse_questions",
    "passage_dict", "plain_summary", "question_dict", "question_from_row", "question_of",
    "questions_from_examples", "results_rows", "rows_to_csv", "score_answer", "summary_table",
]
