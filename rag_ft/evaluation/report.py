"""A run's numbers: per-configuration aggregates, the summary in sentences, flat result rows and their CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from rag_ft.evaluation import metrics as m
from rag_ft.evaluation.configs import RunConfig
from rag_ft.evaluation.sets import EvalQuestion
from rag_ft.evaluation.store import AnswerRecord, RunInfo
from rag_ft.untrusted import csv_cell

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
        # how many questions each retrieval number rests on (the summary says it, and concludes nothing below 10)
        out["n"] = {"doc": len(doc), "page": len(page)}
    for key in ("similarity", "f1", "style", "not_covered", "wrong_refusal", "judge_groundedness", "judge_relevance"):
        out[key] = m.mean(x.get(key) for x in mx)
        out.setdefault("n", {})[key] = sum(x.get(key) is not None for x in mx)
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


MIN_QUESTIONS = 10  # fewer answered questions than this per configuration: numbers are shown, nothing concluded


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _count(row: dict[str, Any], key: str) -> int:
    return int(row.get("n", {}).get(key, 0))


def _questions(n: int) -> str:
    return f"{n} question{'' if n == 1 else 's'}"


def _too_few(n: int) -> str:
    return f"only {_questions(n)}: too few to conclude"


def _share(x: float, n: int) -> str:
    """A share of n questions: "75% of 12" when there are enough, else the count itself ("2 of 3")."""
    return f"{_pct(x)} of {n}" if n >= MIN_QUESTIONS else f"{round(x * n)} of {n}"


def plain_summary(info: RunInfo, rows: Sequence[dict[str, Any]]) -> list[str]:
    """What the numbers say, in sentences a user can act on.

    Each sentence says how many questions it rests on; with fewer than MIN_QUESTIONS it gives the counts and
    says it is too few to conclude, rather than a verdict ("raised", "changed") that a different handful of
    questions could reverse.
    """
    out: list[str] = []
    configs = info.configs
    by_label = {r["configuration"]: r for r in rows}
    fewest = min((by_label[c.label].get("answers", 0) for c in configs), default=0)
    if 0 < fewest < MIN_QUESTIONS:
        out.append(f"Only {_questions(fewest)} answered per configuration: too few to conclude which is better. "
                   f"Answer at least {MIN_QUESTIONS} (Questions: {MIN_QUESTIONS} or more, 0 = all).")
    for cfg in configs:
        if not cfg.rag:
            continue
        row = by_label[cfg.label]
        n_page, n_doc = _count(row, "page"), _count(row, "doc")
        if row.get("page_hit") is not None:
            line = (f"{cfg.label}: retrieval put an expected page in the top {cfg.k} for "
                    f"{_share(row['page_hit'], n_page)} questions with known pages")
            if n_page >= MIN_QUESTIONS:
                out.append(f"{line} (within one page: {_pct(row.get('page_hit_near'))}; right document: "
                           f"{_pct(row.get('doc_hit'))} of {n_doc}).")
            else:
                out.append(f"{line}; {_too_few(n_page)}.")
        elif row.get("doc_hit") is not None:
            line = (f"{cfg.label}: retrieval found the expected document in the top {cfg.k} for "
                    f"{_share(row['doc_hit'], n_doc)} questions")
            out.append(f"{line}." if n_doc >= MIN_QUESTIONS else f"{line}; {_too_few(n_doc)}.")
        # the same model without retrieval: what did RAG change?
        plain = next((c for c in configs if c.model == cfg.model and not c.rag), None)
        if plain:
            out += _rag_effect(cfg.model, by_label[plain.label], row)
    # two RAG configurations that differ only in hybrid search
    rags = [c for c in configs if c.rag]
    for a in rags:
        for b in rags:
            if a.model == b.model and a.k == b.k and not a.hybrid and b.hybrid:
                ra, rb = by_label[a.label], by_label[b.label]
                x, y = ra.get("page_hit"), rb.get("page_hit")
                if x is not None and y is not None:
                    n = min(_count(ra, "page"), _count(rb, "page"))
                    tail = f" ({_questions(n)})" if n >= MIN_QUESTIONS else f", on {_too_few(n)}"
                    out.append(f"Hybrid search changed page hit@{a.k} from {_pct(x)} to {_pct(y)}{tail}.")
    out += _shares(info, by_label, "style", f"Answers that follow your format ({info.options.style_pattern})")
    out += _shares(info, by_label, "not_covered",
                   "On the questions your documents cannot answer, 'not covered' was said by")
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


def _rag_effect(model: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    out = []
    for key, what in (("f1", "token F1"), ("similarity", "answer similarity")):
        b, a = before.get(key), after.get(key)
        if b is not None and a is not None:
            n = min(_count(before, key), _count(after, key))
            if n < MIN_QUESTIONS:
                out.append(f"With {model}, {what} was {_num(b)} without RAG and {_num(a)} with it, on {_too_few(n)}.")
            else:
                verb = "raised" if a > b else "lowered" if a < b else "left"
                tail = "unchanged at " + _num(a) if verb == "left" else f"from {_num(b)} to {_num(a)}"
                out.append(f"With {model}, RAG {verb} {what} {tail} ({_questions(n)}).")
            break
    if before.get("total_s") and after.get("total_s"):
        n = min(before.get("answers", 0), after.get("answers", 0))
        tail = f" ({n} answers each)" if n >= MIN_QUESTIONS else f", on {_too_few(n)}"
        out.append(f"With {model}, the mean answer time was {before['total_s']:.1f} s without RAG and "
                   f"{after['total_s']:.1f} s with it{tail}.")
    return out


def _shares(info: RunInfo, by_label: dict[str, dict[str, Any]], key: str, intro: str) -> list[str]:
    """One sentence: each configuration's share for ``key``, with the questions it rests on."""
    found = [(c.label, by_label[c.label]) for c in info.configs if by_label[c.label].get(key) is not None]
    if not found:
        return []
    parts = ", ".join(f"{label} {_share(row[key], _count(row, key))}" for label, row in found)
    n = min(_count(row, key) for _, row in found)
    return [f"{intro}: {parts}" + (f"; {_too_few(n)}." if n < MIN_QUESTIONS else ".")]


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
    """The rows as CSV; text cells that a spreadsheet would run as a formula are made plain text (csv_cell)."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)
    return out.getvalue()


# ---------------------------------------------------------------- what the Compare page shows


def present_metrics(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(key, label, kind) of the METRICS that at least one configuration has a value for, in METRICS order."""
    return [(key, label, kind) for key, label, kind, _ in METRICS if any(r.get(key) is not None for r in rows)]


def table_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The summary table: one row per configuration, metrics under their labels, rounded for reading
    (dollars to 6 decimals, since an answer costs fractions of a cent; everything else to 3)."""
    present = present_metrics(rows)
    return [{"Configuration": r["configuration"], "Setup": r["setup"], "Answers": r["answers"], "Errors": r["errors"],
             **{label: None if r.get(key) is None else round(r[key], 6 if kind == "dollars" else 3)
                for key, label, kind in present}} for r in rows]


def chart_rows(rows: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Bar chart data for one kind of metric ("fraction", "seconds"): metric x configuration x value."""
    return [{"metric": label, "configuration": r["configuration"], "value": r[key]}
            for key, label, k in present_metrics(rows) if k == kind for r in rows if r.get(key) is not None]


def answer_facts(rec: AnswerRecord) -> list[str]:
    """The facts line under one answer: timings, tokens, and each per-answer metric that applies."""
    mx = rec.metrics
    facts = [f"first token {rec.ttft_s:.2f} s", f"total {rec.total_s:.2f} s",
             f"{rec.input_tokens}+{rec.output_tokens} tokens"]
    if mx.get("page_rank") is not None or mx.get("doc_rank") is not None:
        facts.append(f"expected page at rank {mx.get('page_rank') or '-'}, document at {mx.get('doc_rank') or '-'}")
    if mx.get("f1") is not None:
        facts.append(f"F1 {mx['f1']:.2f}")
    if mx.get("similarity") is not None:
        facts.append(f"similarity {mx['similarity']:.2f}")
    if mx.get("style") is not None:
        facts.append("follows format" if mx["style"] else "format not followed")
    if mx.get("judge_groundedness") is not None:
        facts.append(f"LLM judgement: grounded {mx['judge_groundedness']}/5, relevant {mx.get('judge_relevance')}/5")
    return facts


def expected_answers(info: RunInfo, set_size: int) -> int:
    """How many answers the run asks for: its questions (the set, cut to its limit) x its configurations."""
    questions = min(set_size, info.options.limit) if info.options.limit else set_size
    return questions * len(info.configs)
