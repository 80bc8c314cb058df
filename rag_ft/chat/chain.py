"""The answer chain, an LCEL runnable: condense -> retrieve -> relevance gate -> prompt -> model -> citation check.

``build_chain(model, retriever)`` returns a ``Runnable`` that takes ``{"question": str, "history": [{"role",
"content"}, ...]}`` and streams ``{"answer": text piece}`` chunks as the model writes them, then one
``{"result": AnswerResult}``; ``invoke`` gives ``{"answer": the whole text, "result": ...}``. It is an ordinary
LangChain runnable: ``stream``/``astream``/``astream_events``/``batch`` work, its steps show up in callbacks and
traces, and it composes with any ``BaseChatModel`` and any ``BaseRetriever``. ``RagChain`` is the small facade
the pages, the evaluation runner and the benches use; it only calls the runnable.

Citations come from retrieval and verification, not from trusting the model: markers that point at no
passage are dropped, a marker whose passage does not support its sentence moves to one that does (or is
dropped), claims no passage supports are listed with the answer's support level, and when nothing relevant is retrieved the model is
not asked at all: the answer says the documents do not cover the question.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, convert_to_messages
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import (
    Runnable,
    RunnableBranch,
    RunnableGenerator,
    RunnableLambda,
    RunnablePassthrough,
)
from langchain_core.runnables.utils import AddableDict

from rag_ft.chat.citations import Citation, check, content_words
from rag_ft.chat.prompt import NOT_COVERED, SYSTEM_PROMPT, format_passages, user_message
from rag_ft.models.providers import explain_error
from rag_ft.records import Passage
from rag_ft.retrieval.adapters import as_retriever

NO_DOCUMENTS = "No documents are indexed yet: load the sample documents or upload files on the Documents page."
HISTORY_TURNS = 4  # messages of history the model sees; the 135M model has a small useful context
# The "do the documents cover this at all?" gate uses the best passage's embedding similarity: hybrid
# scores cannot say it, since BM25 is normalised per query (the best keyword match always scores 1).
# Measured on sample_docs with MiniLM: off-topic questions <= 0.03, answerable ones >= 0.23.
MIN_SIMILARITY = 0.15

# Lines that try to steer the model. They are kept in the source card but never reach the prompt.
INJECTION = re.compile(
    r"(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(instruction|prompt|rule|above|previous|prior)"
    r"|\b(you are now|new instructions?|system prompt|act as)\b",
    re.IGNORECASE,
)
FOLLOW_UP = re.compile(r"^(and|or|but|also|what about|how about|same for|then)\b|\b(it|its|they|them|that|this|those|these)\b", re.I)
NOT_COVERED_HINTS = ("do not cover", "don't cover", "does not cover", "not in your documents", "not covered")


class ChainError(RuntimeError):
    """The model failed; ``partial`` holds what it had written."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


@dataclass
class AnswerResult:
    question: str
    standalone_question: str
    text: str
    raw_text: str
    citations: list[Citation]
    passages: list[Passage]
    covered: bool
    model: str
    rag: bool
    ttft_s: float = 0.0
    total_s: float = 0.0
    retrieval_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    removed_markers: list[int] = field(default_factory=list)
    sanitized: list[int] = field(default_factory=list)  # passages whose instruction-like lines were withheld
    # the citation check (rag_ft.chat.citations.check): markers dropped because their passage did not support
    # the sentence and no other did, claims no passage supports, how many claims the answer makes, and the
    # share of them supported (None: no claim checked, e.g. "not covered" or RAG off)
    dropped_markers: list[int] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    claims: int = 0
    support_level: float | None = None


def sanitize(text: str) -> tuple[str, bool]:
    """Withhold sentences that try to instruct the model; passages are data."""
    parts = re.split(r"(?<=[.!?])\s+|\n", text)
    kept = [p for p in parts if not INJECTION.search(p)]
    if len(kept) == len(parts):
        return text, False
    return " ".join(kept + ["[instruction-like text withheld]"]), True


def condense_question(question: str, history: Sequence[dict[str, str]]) -> str:
    """Make a follow-up stand alone by joining it to the last user question it depends on.

    A deterministic rewrite: the 135M local model cannot be trusted to paraphrase, and for retrieval the
    previous question's content words are what a follow-up like "and for part-time staff?" lacks.
    """
    previous = [m["content"] for m in history if m.get("role") == "user"]
    if not previous:
        return question.strip()
    q = question.strip()
    terse = len(content_words(q)) <= 2
    if FOLLOW_UP.search(q) or terse:
        return f"{previous[-1].strip().rstrip('?')}? {q}"
    return q


def is_not_covered(text: str) -> bool:
    low = text.lower()
    return any(h in low for h in NOT_COVERED_HINTS)


def prompt_messages(
    question: str, passages: Sequence[Passage] | None, history: Sequence[dict[str, str]] = ()
) -> list[BaseMessage]:
    """The model's input. With passages (RAG, even none): system + history + the numbered passages and question,
    the same text as ``prompt.build_messages`` (what the grounding adapter is trained on); ``None``: the model alone.
    """
    past = [{"role": m["role"], "content": m["content"]} for m in history if m.get("role") in ("user", "assistant")]
    past_messages = convert_to_messages(past[-HISTORY_TURNS:])
    if passages is None:
        return [*past_messages, HumanMessage(question)]
    return [SystemMessage(SYSTEM_PROMPT), *past_messages, HumanMessage(user_message(question, format_passages(passages)))]


# ---- the steps of the runnable. Each takes the state dict that flows through the chain and returns it with its
# key(s) added. Plain functions rather than RunnablePassthrough.assign where no runnable is nested: an assign
# costs a thread hand-off per call when streaming, which showed in time to first token.
def _condense(state: dict) -> dict:
    """Stamps the start (the timings count from here) and makes a follow-up stand alone."""
    started = time.perf_counter()
    return {**state, "started": started, "standalone": condense_question(state["question"], state.get("history") or ())}


def _to_passages(documents: list[Any]) -> list[Passage]:
    return [Passage.from_document(d) for d in documents]


def retrieval_step(retriever: BaseRetriever, search_kwargs: dict[str, Any] | None = None) -> Runnable[str, list[Passage]]:
    """query -> passages: the retriever's Documents (``search_kwargs`` go to its ``invoke``) as Passages."""
    bound = retriever.bind(**search_kwargs) if search_kwargs else retriever
    return (bound | RunnableLambda(_to_passages, name="to_passages")).with_config(run_name="retrieve")


def _relevance_gate(min_similarity: float) -> Runnable[dict, dict]:
    def relevance_gate(state: dict) -> dict:
        passages = state.get("passages", [])
        if not any(p.scores.get("vector", p.score) >= min_similarity for p in passages):
            passages = []
        return {**state, "passages": passages, "retrieval_s": time.perf_counter() - state["started"]}

    return RunnableLambda(relevance_gate)


def _filter_injections(state: dict) -> dict:
    """``shown``: the passages as the model sees them; ``sanitized``: 1-based numbers of those changed."""
    shown, sanitized = [], []
    for i, p in enumerate(state.get("passages", []), 1):
        clean, changed = sanitize(p.text)
        if changed:
            sanitized.append(i)
        shown.append(replace(p, text=clean))
    return {**state, "shown": shown, "sanitized": sanitized}


def _prompt(rag: bool) -> Runnable[dict, dict]:
    def prompt(state: dict) -> dict:
        messages = prompt_messages(state["standalone"], state["shown"] if rag else None, state.get("history") or ())
        return {**state, "messages": messages}

    return RunnableLambda(prompt)


class _Answering:
    """Folds the streamed chunks (state keys, then the model's message chunks) into the final AnswerResult."""

    def __init__(self, model_label: str, rag: bool) -> None:
        self.model_label, self.rag = model_label, rag
        self.state: dict[str, Any] = {}
        self.raw, self.usage, self.first_at = "", {}, 0.0

    def feed(self, chunk: dict) -> str:
        """Take one chunk; returns the text piece it carries ("" for state chunks)."""
        piece = ""
        for key, value in chunk.items():
            if key != "answer":
                self.state[key] = value
                continue
            piece = value.content if isinstance(value.content, str) else ""
            self.usage = getattr(value, "usage_metadata", None) or self.usage
        if piece:
            self.first_at = self.first_at or time.perf_counter()
            self.raw += piece
        return piece

    def failed(self, exc: Exception) -> ChainError | None:
        """A model failure (the prompt had reached the model) as a ChainError with what it had written; None
        for a failure before that, which is not the model's and is raised as it is."""
        if "messages" not in self.state:
            return None
        return ChainError(explain_error(exc), partial=self.raw)

    def result(self) -> AnswerResult:
        s, raw = self.state, self.raw
        started = s["started"]
        result = AnswerResult(
            s["question"], s["standalone"], raw.strip(), raw, [], s.get("passages", []), True, self.model_label,
            self.rag, ttft_s=self.first_at - started if self.first_at else 0.0, total_s=time.perf_counter() - started,
            retrieval_s=s.get("retrieval_s", 0.0), input_tokens=int(self.usage.get("input_tokens", 0) or 0),
            output_tokens=int(self.usage.get("output_tokens", 0) or 0), sanitized=s.get("sanitized", []),
        )
        if not self.rag:
            return result
        if is_not_covered(raw):
            result.text, result.covered = NOT_COVERED, False
        else:  # checked against the passages as retrieved, so source cards show the document as it is
            checked = check(raw, result.passages)
            result.text, result.citations, result.removed_markers = checked.text, checked.citations, checked.removed
            result.dropped_markers, result.unsupported = checked.dropped, checked.unsupported
            result.claims, result.support_level = checked.claims, checked.support_level
        return result


def _citation_check(model_label: str, rag: bool) -> Runnable[dict, AddableDict]:
    """The last step: passes text pieces on as they come, then yields the checked AnswerResult."""

    def check_citations(chunks: Iterator[dict]) -> Iterator[AddableDict]:
        answering = _Answering(model_label, rag)
        try:
            for chunk in chunks:
                if piece := answering.feed(chunk):
                    yield AddableDict(answer=piece)
        except Exception as exc:  # shown in the chat; the conversation is kept
            if (error := answering.failed(exc)) is None:
                raise
            raise error from exc
        yield AddableDict(result=answering.result())

    async def acheck_citations(chunks: AsyncIterator[dict]) -> AsyncIterator[AddableDict]:
        answering = _Answering(model_label, rag)
        try:
            async for chunk in chunks:
                if piece := answering.feed(chunk):
                    yield AddableDict(answer=piece)
        except Exception as exc:
            if (error := answering.failed(exc)) is None:
                raise
            raise error from exc
        yield AddableDict(result=answering.result())

    return RunnableGenerator(check_citations, acheck_citations, name="check_citations")


def _not_covered(model_label: str) -> Runnable[dict, AddableDict]:
    def not_covered(state: dict) -> AddableDict:
        took = time.perf_counter() - state["started"]
        result = AnswerResult(state["question"], state["standalone"], NOT_COVERED, NOT_COVERED, [], [], False,
                              model_label, True, ttft_s=took, total_s=took, retrieval_s=state["retrieval_s"])
        return AddableDict(answer=NOT_COVERED, result=result)

    return RunnableLambda(not_covered)


def build_chain(
    chat_model: BaseChatModel,
    retriever: BaseRetriever | None = None,
    *,
    search_kwargs: dict[str, Any] | None = None,
    min_similarity: float = MIN_SIMILARITY,
    model_label: str = "",
) -> Runnable[dict[str, Any], dict[str, Any]]:
    """The answer chain as one LCEL runnable; ``retriever=None`` asks the model alone.

    ``search_kwargs`` are passed to the retriever's ``invoke`` (ours takes k, collection, hybrid, threshold).
    The relevance gate needs passages scored like ours (``scores["vector"]`` or ``score`` in the metadata);
    for a retriever that returns no scores, pass ``min_similarity=0``.
    """
    label = model_label or getattr(chat_model, "model_name", "") or type(chat_model).__name__
    rag = retriever is not None
    gate = _relevance_gate(min_similarity)
    generate = (
        RunnableLambda(_filter_injections, name="injection_filter")
        | _prompt(rag)
        | RunnablePassthrough.assign(answer=itemgetter("messages") | chat_model)
        | _citation_check(label, rag)
    )
    condense = RunnableLambda(_condense, name="condense")
    if not rag:
        return (condense | gate | generate).with_config(run_name="answer")
    chain = (
        condense
        | RunnablePassthrough.assign(passages=itemgetter("standalone") | retrieval_step(retriever, search_kwargs))
        | gate
        | RunnableBranch((RunnableLambda(_nothing_relevant), _not_covered(label)), generate)
    )
    return chain.with_config(run_name="rag_answer")


def _nothing_relevant(state: dict) -> bool:
    return not state["passages"]


class RagChain:
    """One configuration of "model + retrieval" over the LCEL runnable; ``retriever=None`` asks the model alone.

    ``retriever`` is a LangChain ``BaseRetriever`` (``rag_ft.retrieval.hybrid.HybridRetriever``), or any object
    with ``search(query, k=..., **kw) -> list[Passage]``, which is wrapped as one.
    """

    def __init__(
        self,
        chat_model: BaseChatModel,
        retriever: Any = None,
        k: int = 4,
        threshold: float | None = None,
        collection: str = "default",
        model_label: str = "",
        hybrid: bool | None = None,
        min_similarity: float = MIN_SIMILARITY,
    ) -> None:
        self.min_similarity = min_similarity
        self.model = chat_model
        self.retriever = as_retriever(retriever)
        self.k, self.threshold, self.collection, self.hybrid = k, threshold, collection, hybrid
        self.model_label = model_label or getattr(chat_model, "model_name", "") or type(chat_model).__name__
        self.search_kwargs: dict[str, Any] = {"k": k, "collection": collection}
        if threshold is not None:
            self.search_kwargs["threshold"] = threshold
        if hybrid is not None:
            self.search_kwargs["hybrid"] = hybrid
        self.runnable = build_chain(chat_model, self.retriever, search_kwargs=self.search_kwargs,
                                    min_similarity=min_similarity, model_label=self.model_label)

    def retrieve(self, query: str) -> list[Passage]:
        """The passages this chain would retrieve for ``query`` (before the relevance gate)."""
        if self.retriever is None:
            return []
        return retrieval_step(self.retriever, self.search_kwargs).invoke(query)

    def stream(self, question: str, history: Sequence[dict[str, str]] = ()) -> Iterator[str | AnswerResult]:
        """Yield text pieces as the model writes them, then the final AnswerResult."""
        for chunk in self.runnable.stream({"question": question, "history": list(history)}):
            if "answer" in chunk:
                yield chunk["answer"]
            if "result" in chunk:
                yield chunk["result"]

    def run(self, question: str, history: Sequence[dict[str, str]] = ()) -> AnswerResult:
        for item in self.stream(question, history):
            if isinstance(item, AnswerResult):
                return item
        raise ChainError("The chain ended without an answer.")
