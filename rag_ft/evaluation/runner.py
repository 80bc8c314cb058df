"""The runner: every question through every configuration of a run, each answer scored and stored as it comes.

Runs can be stopped between answers and continued later: answers already stored are not asked again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage

from rag_ft.chat.chain import is_not_covered
from rag_ft.evaluation import metrics as m
from rag_ft.evaluation.configs import RunConfig, RunOptions
from rag_ft.evaluation.judge import judge_answer
from rag_ft.evaluation.sets import EvalError, EvalQuestion
from rag_ft.evaluation.store import AnswerRecord, EvalStore, RunInfo
from rag_ft.pricing import answer_price


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


def warm_up(chain: Any, question: str, local: bool) -> None:
    """Load what a configuration's first answer would otherwise load inside its timing.

    Without this, the first answer's time to first token and total time include loading the chat model (about
    15 s for the local one), its LoRA adapter and, with retrieval, the embedding model and the indexes: the
    mean latency then measures loading, not answering. A local model writes one token (which loads it and its
    adapter); a remote model is not called (there is nothing to load, and a call costs money). Failures are
    left to the timed answer, which meets them again and records them.
    """
    try:
        if chain.retriever is not None:
            chain.retrieve(question)
        if local:
            # max_new_tokens: LocalChatModel reads it per call; other models take and ignore extra arguments
            chain.model.invoke([HumanMessage(content="Hello")], max_new_tokens=1)
    except Exception:  # noqa: BLE001 - see the docstring: the answer itself reports the failure
        pass


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
                            if progress:
                                progress(Progress(count, total, f"{cfg.label}: loading the model"))
                            warm_up(chains[i], q.question, self.backends.get(cfg.model, "local") == "local")
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
                                   answer_price(cfg.model, self.backends.get(cfg.model, "local")))
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
