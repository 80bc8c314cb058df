"""Retrieval on real documents: which filing (or page) comes back, for vector, hybrid and each technique, side by side.

Run: .venv/bin/python bench/retrieval_real.py [--set ../shared/eval/sec-10q] [--cache /tmp/ragft-retrieval-real]
     [--plain DATA_DIR] [--contextual DATA_DIR] [--skip-samples]

The set is a folder with ``docs/`` and ``questions.jsonl`` (``source_docs`` naming the expected files; the SEC 10-Q
dev set's PROVENANCE.md says where they come from). Each question is searched once per configuration with the
engine's retriever (``rag_ft.retrieval.hy.HybridRetriever``) and scored with the engine's evaluation code
(``rag_ft.evaluation.retrieval_eval``, the CLI's ``eval``):

- single-document questions: hit@1 and hit@4 of the right document, MRR (over the top 10);
- several-document questions: recall@4 and recall@10, the share of their documents with a passage in the top k;
- on sample_docs/ (which has gold pages): page-level hit@1/@4 and document hit@1.

Techniques (each on top of the hybrid baseline, then all together, then fusion weights):
- headers in BM25: every chunk is keyword-indexed with its document's name and its section (context.py);
- headers in vectors: the same header in the embedded text; needs its own vectors, so a second data folder;
- document matching: questions that name a document's name, period or the words it is made of prefer that
  document's chunks; "latest"/"most recent" prefers the newest period among them (metadata.py);
- document spread: each passage already chosen from a document lowers that document's next ones a little, so
  look-alike documents all get a place in the top k (hybrid.DIVERSITY).

Parsing the 20 filings takes ~15 min on 2 cores and embedding them again ~20 min, so both data folders are kept
in ``--cache`` (or given with ``--plain``/``--contextual``: data folders indexed without / with headers) and a
second run only searches.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT

import rag_ft.retrieval.context as context
import rag_ft.retrieval.hybrid as hy
from rag_ft.evaluation import metrics as m
from rag_ft.evaluation.retrieval_eval import evaluate_retrieval, recall_at_k
from rag_ft.evaluation.sets import SAMPLE_QUESTIONS, parse_questions
from rag_ft.index.documents import index_files, list_documents, load_sample_documents, reembed
from rag_ft.models.local_embeddings import LocalEmbeddings, load_sentence_transformer
from rag_ft.settings import Settings, load_settings

DEFAULT_SET = ROOT.parent / "shared" / "eval" / "sec-10q"
DEPTH = 10  # passages retrieved per question: hit@1/@4 and recall@4/@10 are read off the same ranking


@dataclass(frozen=True)
class Config:
    label: str
    vectors: str  # "plain" | "contextual": which data folder (how its chunks were embedded)
    hybrid: bool = True
    bm25_headers: bool = False
    boost: float = 0.0
    weight: float = hy.VECTOR_WEIGHT
    spread: float = 0.0


def configs(w: float, b: float, d: float) -> list[Config]:
    """Baselines, each technique alone on top of hybrid, all together (the defaults: headers in BM25, not in
    vectors), the same with headers in vectors too, then each knob of the defaults moved alone."""
    out = [
        Config("vector", "plain", hybrid=False),
        Config("hybrid", "plain"),
        Config("+ headers in BM25", "plain", bm25_headers=True),
        Config("vector, headers in vectors", "contextual", hybrid=False),
        Config("+ headers in vectors and BM25", "contextual", bm25_headers=True),
        Config("+ document matching", "plain", boost=b),
        Config("+ document spread", "plain", spread=d),
        Config("vector + matching + spread", "plain", hybrid=False, boost=b, spread=d),
        Config("all (defaults)", "plain", bm25_headers=True, boost=b, spread=d),
        Config("all + headers in vectors", "contextual", bm25_headers=True, boost=b, spread=d),
    ]
    out += [Config(f"  defaults, boost {x}", "plain", bm25_headers=True, boost=x, spread=d)
            for x in (0.1, 0.2, 0.3, 0.5) if x != b]
    out += [Config(f"  defaults, spread {x}", "plain", bm25_headers=True, boost=b, spread=x)
            for x in (0.0, 0.02, 0.05, 0.1) if x != d]
    out += [Config(f"  defaults, vector weight {x}", "plain", bm25_headers=True, boost=b, spread=d, weight=x)
            for x in (0.4, 0.5, 0.6, 0.7) if x != w]
    return out


def settings_for(folder: Path) -> Settings:
    return load_settings(env={"RAG_FT_DATA_DIR": str(folder), "RAG_FT_PROVIDER": "local"})


def build(folder: Path, contextual: bool, emb: LocalEmbeddings, index: Callable[[Settings], object] | None,
          plain: Path | None) -> None:
    """An indexed data folder, unless it exists: copied from the plain one and re-embedded, else indexed."""
    if (folder / "done").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    context.EMBED_HEADERS = contextual
    t = time.perf_counter()
    if plain is not None:  # same chunks, other vectors: no parsing
        shutil.copytree(plain, folder)
        reembed(settings_for(folder), emb)
    else:
        folder.mkdir(parents=True)
        index(settings_for(folder))
    (folder / "done").write_text(f"{time.perf_counter() - t:.0f} s\n")
    print(f"built {folder} in {time.perf_counter() - t:.0f} s", flush=True)


def apply(c: Config) -> None:
    context.INDEX_HEADERS = c.bm25_headers  # read when the BM25 index is built
    hy.DOCUMENT_BOOST = c.boost
    hy.VECTOR_WEIGHT = c.weight
    hy.DIVERSITY = c.spread
    hy.clear_cache()


def run_set(folders: dict[str, Path], questions: list, emb: LocalEmbeddings, cfgs: list[Config],
            pages: bool) -> None:
    """One line per configuration: document hit@1/@4 + MRR for single-document questions, recall@4/@10 for
    several-document ones, page-level hit@1/@4 where the questions carry pages."""
    head = f"  {'configuration':38s} {'hit@1':>6} {'hit@4':>6} {'MRR':>6} | {'rec@4':>6} {'rec@10':>6}"
    print(head + (f" | {'p.hit@1':>7} {'p.hit@4':>7}" if pages else "") + "   ms/query")
    for c in cfgs:
        apply(c)
        s = settings_for(folders[c.vectors])
        retriever = hy.HybridRetriever(s, emb, hybrid=c.hybrid, threshold=0.0)
        names = [d.name for d in list_documents(s)]

        def search(q: str, k: int, retriever=retriever) -> list[m.Ref]:
            return [m.Ref(p.document, tuple(p.pages)) for p in retriever.search(q, k=k)]

        t = time.perf_counter()
        rep = evaluate_retrieval(questions, search, k=DEPTH, indexed=names)
        ms = (time.perf_counter() - t) * 1000 / max(1, rep.evaluated)
        single = [r for r in rep.results if len(r.documents) == 1]
        multi = [r for r in rep.results if len(r.documents) > 1]

        def refs(r) -> list[m.Ref]:
            return [m.Ref(x["document"], tuple(x["pages"])) for x in r.retrieved]

        cells = [m.mean(m.hit_at_k(r.doc_rank, 1) for r in single), m.mean(m.hit_at_k(r.doc_rank, 4) for r in single),
                 m.mean(m.reciprocal_rank(r.doc_rank) for r in single)] if single else [None] * 3
        cells += [m.mean(recall_at_k(refs(r), r.documents, k) for r in multi) for k in (4, DEPTH)] if multi else [None] * 2
        if pages:
            applicable = [r for r in rep.results if r.page_applies]
            cells += [m.mean(m.hit_at_k(r.page_rank, k) for r in applicable) for k in (1, 4)]
        text = " ".join(f"{x:6.3f}" if x is not None else "   n/a" for x in cells[:3]) + " | "
        text += " ".join(f"{x:6.3f}" if x is not None else "   n/a" for x in cells[3:5])
        if pages:
            text += " | " + " ".join(f"{x:7.3f}" for x in cells[5:])
        print(f"  {c.label:38s} {text}   {ms:6.0f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", type=Path, default=DEFAULT_SET)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/ragft-retrieval-real"))
    ap.add_argument("--plain", type=Path, help="a data folder with the set indexed WITHOUT headers in vectors")
    ap.add_argument("--contextual", type=Path, help="a data folder with the set indexed WITH headers in vectors")
    ap.add_argument("--skip-samples", action="store_true", help="skip the sample_docs (page-level) table")
    ap.add_argument("--skip-set", action="store_true", help="skip the real-documents set (sample_docs only)")
    ap.add_argument("--only", nargs="*", help="run only the configurations with these labels")
    args = ap.parse_args()
    load_sentence_transformer()
    emb = LocalEmbeddings()
    emb.embed_query("warm-up")
    defaults = (hy.VECTOR_WEIGHT, hy.DOCUMENT_BOOST, hy.DIVERSITY, context.INDEX_HEADERS, context.EMBED_HEADERS)
    cfgs = configs(*defaults[:3])
    if args.only:
        cfgs = [c for c in cfgs if c.label.strip() in args.only]

    if not args.skip_set:
        docs = sorted(p for p in (args.set / "docs").iterdir() if p.is_file())
        parsed = parse_questions((args.set / "questions.jsonl").read_bytes(), "questions.jsonl")
        plain = args.plain or args.cache / "set-plain"
        ctx = args.contextual or args.cache / "set-contextual"
        if not args.plain:
            build(plain, False, emb, lambda s: index_files(s, emb, [(p.name, p.read_bytes()) for p in docs]), None)
        if not args.contextual:
            build(ctx, True, emb, None, plain)
        print(f"\n{args.set.name}: {len(docs)} documents, {len(parsed.questions)} questions; top {DEPTH} passages")
        run_set({"plain": plain, "contextual": ctx}, parsed.questions, emb, cfgs, pages=False)

    if not args.skip_samples:
        sp, sc = args.cache / "samples-plain", args.cache / "samples-contextual"
        build(sp, False, emb, lambda s: load_sample_documents(s, emb), None)
        build(sc, True, emb, None, sp)
        questions = parse_questions(SAMPLE_QUESTIONS.read_bytes(), "questions.jsonl").questions
        print(f"\nsample_docs: {sum(q.answerable for q in questions)} answerable questions with gold pages")
        run_set({"plain": sp, "contextual": sc}, questions, emb, cfgs, pages=True)
    hy.VECTOR_WEIGHT, hy.DOCUMENT_BOOST, hy.DIVERSITY, context.INDEX_HEADERS, context.EMBED_HEADERS = defaults
    print(f"\ndefaults: vector weight {defaults[0]}, document boost {defaults[1]}, document spread {defaults[2]}, "
          f"headers in BM25 {defaults[3]}, headers in vectors {defaults[4]}")


if __name__ == "__main__":
    main()
