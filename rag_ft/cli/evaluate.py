"""``eval QUESTIONS.jsonl``: retrieval quality of an indexed collection on a question set.

Nothing is indexed here and no model answers: each question is searched as the chat would search it, and
hit@1, hit@k and MRR are computed with the Compare page's definitions (``rag_ft.evaluation.retrieval_eval``).
The questions file is the Compare page's format (JSONL, JSON or CSV); expected documents may also be given as
``source_docs`` (a list of file names) or ``citations`` (a list of {"doc", "page"}).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rag_ft.cli.output import EXIT_USAGE, CliError, Progress, fmt, note, print_json


def add_parsers(sub: Any, common: argparse.ArgumentParser, coll: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "eval", parents=[common, coll], help="retrieval hit@k / MRR of the indexed collection on a question set",
        description="Search every answerable question that names its expected document(s) and score the "
                    "ranks: hit@1, hit@k and MRR at document level, at page level where questions carry pages "
                    "(exact and within one page), recall@k for questions with several expected documents.")
    p.add_argument("questions", metavar="QUESTIONS", type=Path, help="a .jsonl, .json or .csv questions file")
    p.add_argument("-k", type=int, default=4, help="passages retrieved per question (default: %(default)s)")
    p.add_argument("--only-indexed", action="store_true",
                   help="skip questions whose expected documents are not all indexed in the collection")
    p.add_argument("--threshold", type=float, default=None,
                   help="minimum passage score, as in the chat (default: the RAG_FT_RELEVANCE_THRESHOLD "
                        "setting; 0 ranks without a cut)")
    p.add_argument("--vector-only", action="store_true", help="vector similarity only (no BM25)")
    p.set_defaults(func=cmd_eval)


def load_questions(path: Path) -> list[Any]:
    from rag_ft.evaluation import EvalError, parse_questions

    if not path.is_file():
        raise CliError(f"{path}: no such file")
    try:
        parsed = parse_questions(path.read_bytes(), path.name)
    except EvalError as exc:
        raise CliError(str(exc)) from exc
    for problem in parsed.problems:
        note(f"warning: {problem}")
    if not parsed.questions:
        raise CliError(f"{path}: no usable questions")
    return parsed.questions


def cmd_eval(args: argparse.Namespace) -> int:
    from rag_ft.cli.main import cli_settings
    from rag_ft.evaluation import metrics as m
    from rag_ft.evaluation.retrieval_eval import evaluate_retrieval
    from rag_ft.index.documents import list_documents
    from rag_ft.index.vectors import IndexProblem
    from rag_ft.models.providers import get_embeddings
    from rag_ft.retrieval.hybrid import Retriever

    if args.k < 1:
        raise CliError("-k must be at least 1", EXIT_USAGE)
    questions = load_questions(args.questions)
    s = cli_settings()
    indexed = [d.name for d in list_documents(s, args.collection) if d.status == "indexed"]
    if not indexed:
        raise CliError(f"no documents are indexed in collection '{args.collection}' ({s.data_dir}): "
                       "run `rag-ft index FILE...` first")
    retriever = Retriever(s, get_embeddings(s))
    hybrid = False if args.vector_only else None

    def search(question: str, k: int) -> list[m.Ref]:
        passages = retriever.search(question, k=k, collection=args.collection, hybrid=hybrid,
                                    threshold=args.threshold)
        return [m.Ref(p.document, tuple(p.pages)) for p in passages]

    bar = Progress("eval")
    try:
        report = evaluate_retrieval(questions, search, k=args.k, indexed=indexed, only_indexed=args.only_indexed,
                                    progress=lambda done, total, msg: bar.update(
                                        done / max(1, total), f"{done}/{total} {msg[:60]}".replace(":", " ")))
    except IndexProblem as exc:
        raise CliError(str(exc)) from exc
    bar.done(f"{report.evaluated} questions")
    summary = report.summary()
    if report.not_indexed:
        note(f"note: {report.not_indexed} question(s) expect documents that are not indexed in "
             f"'{args.collection}' and count as misses; --only-indexed skips them")
    if report.skipped_not_indexed:
        note(f"skipped {report.skipped_not_indexed} question(s) whose expected documents are not all indexed")
    if args.json:
        print_json({"file": str(args.questions), "collection": args.collection,
                    "threshold": s.relevance_threshold if args.threshold is None else args.threshold,
                    "hybrid": not args.vector_only and s.hybrid, **report.as_dict()})
    else:
        print(render(summary))
    if not report.evaluated:
        raise CliError("no question could be evaluated (none is answerable with an expected document"
                       + (", or none has all its documents indexed)" if args.only_indexed else ")"))
    return 0


def render(summary: dict[str, Any]) -> str:
    k, q = summary["k"], summary["questions"]
    left = [f"{n} {what}" for n, what in ((q["unanswerable"], "unanswerable"),
                                           (q["no_expected_document"], "without an expected document"),
                                           (q["skipped_not_indexed"], "not indexed (skipped)")) if n]
    lines = [f"questions: {q['in_file']} in the file, {q['evaluated']} evaluated"
             + (f" (left out: {', '.join(left)})" if left else "")]
    rows = [("document level", summary["document"]), ("page level", summary["page"]),
            ("page level (within one page)", summary["page_within_one"])]
    if summary["page"] is None:
        rows = [*rows[:1], ("page level", None)]
    for label, level in rows:
        if level is None:
            lines.append(f"{label}: n/a (no question carries pages)" if label.startswith("page") else f"{label}: n/a")
            continue
        lines.append(f"{label} ({level['questions']} questions): hit@1 {fmt(level['hit@1'])}  "
                     f"hit@{k} {fmt(level[f'hit@{k}'])}  MRR {fmt(level['mrr'])}")
    multi = summary["multi_document"]
    if multi:
        lines.append(f"several expected documents ({multi['questions']} questions): "
                     f"recall@{k} {fmt(multi[f'recall@{k}'])}")
    return "\n".join(lines)
