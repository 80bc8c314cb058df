"""``search QUERY`` (the Documents page's search box) and ``ask QUESTION`` (the Chat page, one question)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from rag_ft.cli.output import EXIT_USAGE, CliError, note, print_json


def add_parsers(sub: Any, common: argparse.ArgumentParser, coll: argparse.ArgumentParser) -> None:
    p = sub.add_parser("search", parents=[common, coll], help="hybrid search: the passages a question retrieves")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("-k", type=int, default=None, help="passages to return (default: the RAG_FT_K setting, 4)")
    p.add_argument("--threshold", type=float, default=None,
                   help="minimum score 0..1 (default: the RAG_FT_RELEVANCE_THRESHOLD setting)")
    p.add_argument("--vector-only", action="store_true", help="vector similarity only (no BM25)")
    p.set_defaults(func=cmd_search)
    p = sub.add_parser("ask", parents=[common, coll], help="answer a question from the documents, with citations",
                       description="Streams the answer on stdout, then its sources. The model is one of the "
                                   "Chat page's choices (default: the first, as there).")
    p.add_argument("question", metavar="QUESTION")
    p.add_argument("--model", default=None, help="a model label or name from the Chat page's picker")
    p.add_argument("-k", type=int, default=None, help="passages in the prompt (default: the RAG_FT_K setting)")
    p.add_argument("--no-rag", action="store_true", help="ask the model alone, without documents")
    p.add_argument("--max-tokens", type=int, default=256, help="longest answer, in tokens (default: %(default)s)")
    p.set_defaults(func=cmd_ask)


def passage_json(p: Any) -> dict[str, Any]:
    return {"document": p.document, "pages": list(p.pages), "section": p.section, "chunk_index": p.chunk_index,
            "score": p.score, "scores": dict(p.scores), "text": p.text}


def _where(p: Any) -> str:
    return " · ".join(x for x in (p.document, p.page_label, p.section) if x)


def _require_documents(s: Any, collection: str) -> None:
    from rag_ft.index.documents import list_documents

    if not any(d.status == "indexed" for d in list_documents(s, collection)):
        raise CliError(f"no documents are indexed in collection '{collection}' ({s.data_dir}): "
                       "run `rag-ft index FILE...` first")


def cmd_search(args: argparse.Namespace) -> int:
    from rag_ft.cli.main import cli_settings
    from rag_ft.index.vectors import IndexProblem
    from rag_ft.models.providers import get_embeddings
    from rag_ft.retrieval.hybrid import Retriever

    if args.k is not None and args.k < 1:
        raise CliError("-k must be at least 1", EXIT_USAGE)
    s = cli_settings()
    _require_documents(s, args.collection)
    k = args.k or s.retrieval_k
    try:
        passages = Retriever(s, get_embeddings(s)).search(
            args.query, k=k, collection=args.collection, hybrid=False if args.vector_only else None,
            threshold=args.threshold)
    except IndexProblem as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print_json({"query": args.query, "collection": args.collection, "k": k,
                    "passages": [passage_json(p) for p in passages]})
        return 0
    if not passages:
        note("no passage reaches the relevance threshold (try --threshold 0)")
    for i, p in enumerate(passages, 1):
        text = " ".join(p.text.split())
        print(f"{i}. {_where(p)} · score {p.score:.2f}")
        print(f"   {text[:400]}{'...' if len(text) > 400 else ''}")
    return 0


def pick_model(s: Any, wanted: str | None) -> Any:
    """The Chat page's choice named ``wanted`` (label or model name, any case); its default when None."""
    from rag_ft.models.catalogue import available_models

    choices = available_models(s)
    if not wanted:
        return choices[0]
    for c in choices:
        if wanted.lower() in (c.label.lower(), c.model.lower()):
            return c
    names = ", ".join(repr(c.label) for c in choices)
    raise CliError(f"unknown model {wanted!r}; choose one of: {names}", EXIT_USAGE)


def warm_up(model: Any, label: str) -> None:
    """Load the local models before asking, as the app does, so the timings printed are the answer's own."""
    from rag_ft.models.local_chat import LocalChatModel, load_runtime
    from rag_ft.models.local_embeddings import load_sentence_transformer

    if isinstance(model, LocalChatModel) and load_runtime.cache_info().currsize == 0:
        start = time.perf_counter()
        load_sentence_transformer()
        load_runtime()
        note(f"loaded {label} in {time.perf_counter() - start:.1f} s")


def cmd_ask(args: argparse.Namespace) -> int:
    from rag_ft.chat.chain import AnswerResult, ChainError, RagChain
    from rag_ft.cli.main import cli_settings
    from rag_ft.index.vectors import IndexProblem
    from rag_ft.models.catalogue import chat_model_for
    from rag_ft.models.providers import get_embeddings
    from rag_ft.retrieval.hybrid import Retriever

    if args.k is not None and args.k < 1:
        raise CliError("-k must be at least 1", EXIT_USAGE)
    s = cli_settings()
    choice = pick_model(s, args.model)
    retriever = None
    if not args.no_rag:
        _require_documents(s, args.collection)
        retriever = Retriever(s, get_embeddings(s))
    model = chat_model_for(s, choice, max_tokens=args.max_tokens)
    warm_up(model, choice.label)
    chain = RagChain(model, retriever, k=args.k or s.retrieval_k, collection=args.collection, model_label=choice.label)
    result: AnswerResult | None = None
    streamed = ""
    try:
        for item in chain.stream(args.question):
            if isinstance(item, AnswerResult):
                result = item
            else:
                streamed += item
                if not args.json:
                    sys.stdout.write(item)
                    sys.stdout.flush()
    except ChainError as exc:
        if streamed and not args.json:
            print()
        raise CliError(str(exc)) from exc
    except IndexProblem as exc:
        raise CliError(str(exc)) from exc
    if result is None:
        raise CliError("the chain ended without an answer")
    if args.json:
        print_json(answer_json(result))
        return 0
    print()
    # what was streamed is the model's raw text; the checked text drops markers that point at no passage and
    # marks the sentences it attached sources to: show it when it differs
    if " ".join(result.text.split()) != " ".join(streamed.split()):
        print(f"\nChecked answer: {result.text}")
    if result.citations:
        print("\nSources:")
        for c in result.citations:
            flag = "" if c.supported else "  (does not seem to support the sentence)"
            how = " (attached: the model wrote no marker)" if c.attached else ""
            print(f"[{c.marker}] {_where(c.passage)} · score {c.passage.score:.2f}{how}{flag}")
    note(f"{result.model} · first token {result.ttft_s:.2f} s · total {result.total_s:.2f} s")
    return 0


def answer_json(r: Any) -> dict[str, Any]:
    return {
        "question": r.question, "answer": r.text, "raw_answer": r.raw_text, "covered": r.covered,
        "model": r.model, "rag": r.rag,
        "citations": [{"marker": c.marker, "document": c.passage.document, "pages": list(c.passage.pages),
                       "section": c.passage.section, "supported": c.supported, "attached": c.attached,
                       "support": round(c.support, 4)} for c in r.citations],
        "passages": [passage_json(p) for p in r.passages],
        "ttft_s": round(r.ttft_s, 3), "total_s": round(r.total_s, 3), "retrieval_s": round(r.retrieval_s, 3),
        "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
    }
