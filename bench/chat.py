"""Chat latency: time to first token and decode speed of the local model with 4 retrieved passages.

Run: .venv/bin/python bench/chat.py [--questions N]
Baseline in the same run: the bare model on the same prompt without retrieval (what retrieval adds).
Target (issue 4): first token <= 1.5 s on 2 cores with 4 passages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag_ft.chat.chain import RagChain  # noqa: E402
from rag_ft.index.documents import load_sample_documents  # noqa: E402
from rag_ft.models.local_chat import LocalChatModel, load_runtime  # noqa: E402
from rag_ft.models.local_embeddings import LocalEmbeddings  # noqa: E402
from rag_ft.retrieval.hybrid import HybridRetriever  # noqa: E402
from rag_ft.settings import load_settings  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args()
    questions = [json.loads(line)["question"] for line in (ROOT / "sample_docs" / "questions.jsonl").open()
                 if json.loads(line).get("answerable")][: args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={"RAG_FT_DATA_DIR": tmp, "RAG_FT_PROVIDER": "local"})
        emb = LocalEmbeddings()
        t = time.perf_counter()
        load_sample_documents(settings, emb)
        print(f"indexed sample_docs in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        load_runtime()
        print(f"model load {time.perf_counter() - t:.1f} s")
        model = LocalChatModel(max_new_tokens=args.max_tokens)
        retriever = HybridRetriever(settings, emb)
        rag = RagChain(model, retriever, k=4, threshold=0.0)
        bare = RagChain(model, None)
        rag.run(questions[0])  # warm-up
        rows = {"RAG, k=4": [], "model alone": []}
        for q in questions:
            for name, chain in (("RAG, k=4", rag), ("model alone", bare)):
                r = chain.run(q)
                decode_s = max(r.total_s - r.ttft_s, 1e-6)
                rows[name].append((r.ttft_s, r.total_s, r.retrieval_s, r.input_tokens, r.output_tokens / decode_s))
        print(f"\n{len(questions)} questions, greedy, max {args.max_tokens} new tokens, 2 threads")
        print(f"{'config':<12} {'TTFT p50':>9} {'TTFT p95':>9} {'total p50':>10} {'retrieval':>10} {'share':>6}"
              f" {'prompt tok':>10} {'decode tok/s':>12}")
        for name, vals in rows.items():
            ttft = [v[0] for v in vals]
            total = [v[1] for v in vals]
            retr = [v[2] for v in vals]
            share = sum(retr) / sum(total)
            print(f"{name:<12} {statistics.median(ttft):>8.2f}s {pct(ttft, .95):>8.2f}s {statistics.median(total):>9.2f}s"
                  f" {statistics.median(retr) * 1000:>8.1f}ms {share:>6.1%} {statistics.median(v[3] for v in vals):>10.0f}"
                  f" {statistics.median(v[4] for v in vals):>12.1f}")


if __name__ == "__main__":
    main()
