"""Grounding evaluation: base SmolLM2-135M vs base + grounding adapter, side by side, on sample_docs/.

Run: .venv/bin/python bench/grounding_eval.py [--limit N] [--max-tokens 96] [--json out.json]

Held out: the adapter was trained on the fictional documents in grounding/corpus/, never on sample_docs/.
Every question of sample_docs/questions.jsonl goes through the real pipeline (sample documents indexed
with MiniLM into Chroma, the hybrid Retriever, RagChain with the app's default k and relevance threshold);
both models answer the same question one after the other, so they see the same passages and the same
machine load. Metrics (rag_ft.evaluation.metrics where one exists):
- token F1: SQuAD token F1 of the answer (markers removed) against the reference answer (answerable only);
- markers valid: share of answerable questions whose answer has >= 1 marker written by the model that
  points at a retrieved passage (markers the app attaches itself do not count);
- citation precision: of the model's own markers on answerable questions, the share whose passage holds
  the supporting text (the question's ``evidence`` string, or >= half of its content words, or of the
  reference answer's when there is no evidence; or the passage comes from the expected document and page);
  markers the citation check moved to another passage count as the model's, at their new passage;
- shown citation precision: the same over every citation the Chat page shows (attached ones too);
- support level: mean share of an answer's claims backed by a retrieved passage (answerable, covered);
- not covered: share of unanswerable questions answered "not covered" (``gated``: how many of those the
  retrieval threshold decided before any model ran; the same for both models);
- false "not covered": answerable questions the model declined;
- TTFT: time to first token (retrieval included), median and p95.
Targets for the adapter (issue 8): markers valid >= 90%, not covered >= 80%, token F1 >= 2x base.

Split run (for a machine too busy to generate 2 x 48 answers): ``--record passages.json`` runs only the
real retrieval and saves each question's passages; ``--replay passages.json`` answers from those saved
passages with the same RagChain code (no Chroma or embeddings needed there). TTFT then excludes
retrieval (the record step prints its time).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag_ft.chat.chain import AnswerResult, RagChain  # noqa: E402
from rag_ft.chat.citations import MARKER, content_words, support  # noqa: E402
from rag_ft.evaluation import metrics  # noqa: E402
from rag_ft.models.grounding import ADAPTER_DIR, MODEL_LABEL, adapter_available  # noqa: E402
from rag_ft.models.local_chat import LocalChatModel, load_runtime  # noqa: E402
from rag_ft.records import Passage  # noqa: E402
from rag_ft.settings import LOCAL_CHAT_MODEL, load_settings  # noqa: E402

QUESTIONS = ROOT / "sample_docs" / "questions.jsonl"
EVIDENCE_MIN = 0.5  # share of the reference answer's content words a cited passage must contain


@dataclass
class Row:
    question: dict
    result: AnswerResult
    f1: float | None = None
    marker_ok: bool | None = None
    cited_ok: list[bool] = field(default_factory=list)
    shown_ok: list[bool] = field(default_factory=list)
    sentence_support: float | None = None
    not_covered_ok: bool | None = None
    declined: bool | None = None
    gated: bool = False


def load_questions(path: Path = QUESTIONS) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path} line {n}: not JSON ({exc.msg})") from exc
        if "question" not in q or "answerable" not in q:
            raise SystemExit(f"{path} line {n}: needs 'question' and 'answerable'")
        rows.append(q)
    return rows


def holds_evidence(p: Passage, q: dict) -> bool:
    """Does the cited passage contain the supporting text (the question's ``evidence`` or reference answer)?"""
    evidence = q.get("evidence", "")
    if evidence and metrics.normalize_answer(evidence) in metrics.normalize_answer(p.text):
        return True
    ref_words = set(content_words(evidence or q.get("answer", "")))
    if ref_words and len(ref_words & set(content_words(p.text))) / len(ref_words) >= EVIDENCE_MIN:
        return True
    if not metrics.same_document(p.document, q.get("document", "")):
        return False
    pages = q.get("pages") or []
    if pages and p.pages:
        return bool(set(pages) & set(p.pages))
    return bool(q.get("section")) and q["section"].strip().lower() in p.section.lower()


def score(q: dict, r: AnswerResult) -> Row:
    row = Row(q, r)
    if q["answerable"]:
        row.f1 = metrics.token_f1(MARKER.sub(" ", r.text), q.get("answer", ""))
        own = [c for c in r.citations if not c.attached]
        row.marker_ok = bool(own)
        row.cited_ok = [holds_evidence(c.passage, q) for c in own]
        row.shown_ok = [holds_evidence(c.passage, q) for c in r.citations]
        row.sentence_support = metrics.citation_precision(
            [([support(s, c.passage.text) for s in c.sentences], True) for c in own], dangling=len(r.removed_markers))
        row.declined = not r.covered
    else:
        row.not_covered_ok = not r.covered
        row.gated = not r.passages
    return row


def summarize(rows: list[Row]) -> dict:
    ttft = [r.result.ttft_s for r in rows]
    cited = [ok for r in rows for ok in r.cited_ok]
    unans = [r for r in rows if not r.question["answerable"]]
    return {
        "token_f1": metrics.mean(r.f1 for r in rows),
        "markers_valid": metrics.mean(r.marker_ok for r in rows),
        "citation_precision": metrics.mean(cited),
        "shown_precision": metrics.mean(ok for r in rows for ok in r.shown_ok),
        "support_level": metrics.mean(r.result.support_level for r in rows if r.question["answerable"]),
        "sentence_support": metrics.mean(r.sentence_support for r in rows),
        "not_covered": metrics.mean(r.not_covered_ok for r in rows),
        "gated": sum(r.gated for r in unans),
        "false_not_covered": metrics.mean(r.declined for r in rows),
        "ttft_p50": metrics.percentile(ttft, 50),
        "ttft_p95": metrics.percentile(ttft, 95),
        "total_p50": metrics.percentile([r.result.total_s for r in rows], 50),
        "answerable": sum(1 for r in rows if r.question["answerable"]),
        "unanswerable": len(unans),
    }


def fmt(v: float | None, pct: bool = True) -> str:
    if v is None:
        return "n/a"
    return f"{v:.0%}" if pct else f"{v:.2f}"


def print_table(summary: dict[str, dict]) -> None:
    names = list(summary)
    width = max(len(n) for n in names) + 2
    lines = [("token F1 (answerable)", "token_f1", False), ("markers valid (answerable)", "markers_valid", True),
             ("citation precision", "citation_precision", True), ("cited sentence supported", "sentence_support", True),
             ("shown citation precision", "shown_precision", True), ("support level (answerable)", "support_level", True),
             ("not covered correct (unanswerable)", "not_covered", True),
             ("false 'not covered' (answerable)", "false_not_covered", True),
             ("TTFT p50 s", "ttft_p50", False), ("TTFT p95 s", "ttft_p95", False), ("total p50 s", "total_p50", False)]
    print(f"\n{'metric':<36}" + "".join(f"{n:>{width}}" for n in names))
    for label, key, pct in lines:
        print(f"{label:<36}" + "".join(f"{fmt(summary[n][key], pct):>{width}}" for n in names))
    first = summary[names[0]]
    print(f"({first['answerable']} answerable, {first['unanswerable']} unanswerable questions; "
          f"{first['gated']} unanswerable ones stopped by the retrieval threshold before any model ran)")
    if len(names) == 2:
        base, tuned = (summary[n] for n in names)
        checks = [
            ("markers valid >= 90%", (tuned["markers_valid"] or 0) >= 0.9),
            ("not covered >= 80%", (tuned["not_covered"] or 0) >= 0.8),
            ("token F1 >= 2x base", (tuned["token_f1"] or 0) >= 2 * (base["token_f1"] or 0)),
        ]
        print("targets: " + ", ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in checks))


class RecordedRetriever:
    """Replays the passages the real Retriever returned for each question (see ``--record``)."""

    def __init__(self, recorded: dict[str, list[dict]]) -> None:
        self.recorded = recorded

    def search(self, query: str, k: int | None = None, **kwargs: object) -> list[Passage]:
        return [Passage(**p) for p in self.recorded[query]][:k]


def live_retriever(tmp: str) -> tuple[object, object]:
    """Index sample_docs/ into a fresh data folder; the app's own settings (k, threshold, hybrid)."""
    from rag_ft.index.documents import load_sample_documents
    from rag_ft.models.local_embeddings import LocalEmbeddings
    from rag_ft.retrieval.hybrid import Retriever

    settings = load_settings(env={"RAG_FT_DATA_DIR": tmp, "RAG_FT_PROVIDER": "local"})
    emb = LocalEmbeddings()
    t = time.perf_counter()
    load_sample_documents(settings, emb)
    print(f"indexed sample_docs in {time.perf_counter() - t:.1f} s; k={settings.retrieval_k}, "
          f"threshold={settings.relevance_threshold}, hybrid={settings.hybrid}", flush=True)
    return settings, Retriever(settings, emb)


def record(questions: list[dict], path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings, retriever = live_retriever(tmp)
        chain = RagChain(LocalChatModel(), retriever, k=settings.retrieval_k)  # retrieve() only: no model runs
        out, times = {}, []
        for q in questions:
            t = time.perf_counter()
            out[q["question"].strip()] = [p.__dict__ for p in chain.retrieve(q["question"].strip())]
            times.append(time.perf_counter() - t)
    path.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(f"recorded passages for {len(out)} questions in {path}; retrieval p50 "
          f"{metrics.percentile(times, 50) * 1000:.0f} ms, p95 {metrics.percentile(times, 95) * 1000:.0f} ms")


def evaluate(questions: list[dict], retriever: object, k: int, adapter: Path, max_tokens: int,
             adapter_only: bool = False) -> dict[str, list[Row]]:
    load_runtime()
    configs = {
        LOCAL_CHAT_MODEL: LocalChatModel(max_new_tokens=max_tokens),
        MODEL_LABEL: LocalChatModel(adapter_dir=str(adapter), max_new_tokens=max_tokens),
    }
    if adapter_only:
        del configs[LOCAL_CHAT_MODEL]
    chains = {name: RagChain(m, retriever, k=k, model_label=name) for name, m in configs.items()}
    for chain in chains.values():
        chain.run(questions[0]["question"])  # warm-up (first generation and adapter load are slower)
    rows: dict[str, list[Row]] = {name: [] for name in chains}
    for i, q in enumerate(questions, 1):
        for name, chain in chains.items():  # one after the other: same passages, same machine load
            rows[name].append(score(q, chain.run(q["question"])))
        print(f"[{i}/{len(questions)}] {q['question'][:60]!r}: " + " | ".join(
            f"{rows[n][-1].result.text[:70]!r}" for n in chains), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description="base vs grounding adapter on sample_docs")
    ap.add_argument("--limit", type=int, default=0, help="first N questions only (0 = all)")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--adapter", type=Path, default=ADAPTER_DIR)
    ap.add_argument("--json", type=Path, default=None, help="also write per-question results here")
    ap.add_argument("--record", type=Path, default=None, help="only retrieve, and save the passages here")
    ap.add_argument("--replay", type=Path, default=None, help="answer from passages saved by --record")
    ap.add_argument("--adapter-only", action="store_true", help="skip the base model (quick iterations only)")
    args = ap.parse_args()
    questions = load_questions()
    if args.limit:
        questions = questions[: args.limit]
    if args.record:
        record(questions, args.record)
        return
    if not adapter_available(args.adapter):
        raise SystemExit(f"No adapter in {args.adapter}: run `make grounding` first.")
    k = load_settings(env={"RAG_FT_PROVIDER": "local"}).retrieval_k
    if args.replay:
        rows = evaluate(questions, RecordedRetriever(json.loads(args.replay.read_text(encoding="utf-8"))), k,
                        args.adapter, args.max_tokens, args.adapter_only)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            settings, retriever = live_retriever(tmp)
            rows = evaluate(questions, retriever, settings.retrieval_k, args.adapter, args.max_tokens, args.adapter_only)
    summary = {name: summarize(r) for name, r in rows.items()}
    print_table(summary)
    if args.json:
        out = {"summary": summary, "questions": [
            {"question": q["question"], "reference": q.get("answer", ""), "answerable": q["answerable"],
             **{name: {"text": rows[name][i].result.text, "raw": rows[name][i].result.raw_text,
                       "f1": rows[name][i].f1, "marker_ok": rows[name][i].marker_ok,
                       "cited_ok": rows[name][i].cited_ok, "not_covered_ok": rows[name][i].not_covered_ok,
                       "ttft_s": round(rows[name][i].result.ttft_s, 3)} for name in rows}}
            for i, q in enumerate(questions)]}
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
