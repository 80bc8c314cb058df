"""The answer chain: question + history -> standalone question -> passages -> streamed answer -> checked citations.

Citations come from retrieval and verification, not from trusting the model: markers that point at no
passage are dropped, unsupported ones are flagged, and when nothing relevant is retrieved the model is
not asked at all: the answer says the documents do not cover the question.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

from rag_ft.chat.citations import Citation, check, content_words
from rag_ft.chat.prompt import NOT_COVERED, SYSTEM_PROMPT, build_messages
from rag_ft.records import Passage

NO_DOCUMENTS = "No documents are indexed yet: load the sample documents or upload files on the Documents page."
HISTORY_TURNS = 4
# The "do the documents cover this at all?" gate uses the best passage's embedding similarity: hybrid
# scores cannot say it, since BM25 is normalised per query (the best keyword match always scores 1).
# Measured on sample_docs with MiniLM: off-topic questions <= 0.03, answerable ones >= 0.23.
MIN_SIMILARITY = 0.15  # messages of history the model sees; the 135M model has a small useful context

# Lines that try to steer the model. They are kept in the source card but never reach the prompt.
INJECTION = re.compile(
    r"(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(instruction|prompt|rule|above|previous|prior)"
    r"|\b(you are now|new instructions?|system prompt|act as)\b",
    re.IGNORECASE,
)
FOLLOW_UP = re.compile(r"^(and|or|but|also|what about|how about|same for|then)\b|\b(it|its|they|them|that|this|those|these)\b", re.I)
NOT_COVERED_HINTS = ("do not cover", "don't cover", "does not cover", "not in your documents", "not covered")


class Retrieves(Protocol):
    def search(self, query: str, k: int | None = None, **kwargs: Any) -> list[Passage]: ...


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
    short = len(content_words(q)) <= 2
    if FOLLOW_UP.search(q) or short:
        return f"{previous[-1].strip().rstrip('?')}? {q}"
    return q


def is_not_covered(text: str) -> bool:
    low = text.lower()
    return any(h in low for h in NOT_COVERED_HINTS)


def _to_messages(d: dict[str, Any]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](m["content"]) for m in d["messages"]]


class RagChain:
    """One configuration of "model + retrieval"; ``retriever=None`` asks the model alone."""

    def __init__(
        self,
        chat_model: BaseChatModel,
        retriever: Retrieves | None = None,
        k: int = 4,
        threshold: float | None = None,
        collection: str = "default",
        model_label: str = "",
        hybrid: bool | None = None,
        min_similarity: float = MIN_SIMILARITY,
    ) -> None:
        self.min_similarity = min_similarity
        self.model = chat_model
        self.retriever = retriever
        self.k, self.threshold, self.collection, self.hybrid = k, threshold, collection, hybrid
        self.model_label = model_label or getattr(chat_model, "model_name", "") or type(chat_model).__name__
        # LCEL: prompt dict -> LangChain messages -> model -> text chunks
        self.generate = RunnableLambda(_to_messages) | chat_model | StrOutputParser()

    def retrieve(self, query: str) -> list[Passage]:
        if self.retriever is None:
            return []
        kwargs: dict[str, Any] = {"collection": self.collection}
        if self.threshold is not None:
            kwargs["threshold"] = self.threshold
        if self.hybrid is not None:
            kwargs["hybrid"] = self.hybrid
        return self.retriever.search(query, k=self.k, **kwargs)

    def prompt(self, question: str, passages: Sequence[Passage], history: Sequence[dict[str, str]]) -> list[dict]:
        past = [{"role": m["role"], "content": m["content"]} for m in history if m.get("role") in ("user", "assistant")]
        past = past[-HISTORY_TURNS:]
        if self.retriever is None:
            return [*past, {"role": "user", "content": question}]
        messages = build_messages(question, passages, SYSTEM_PROMPT)
        return [messages[0], *past, messages[1]]

    def stream(self, question: str, history: Sequence[dict[str, str]] = ()) -> Iterator[str | AnswerResult]:
        """Yield text pieces as the model writes them, then the final AnswerResult."""
        start = time.perf_counter()
        standalone = condense_question(question, history)
        passages = self.retrieve(standalone)
        if not any(p.scores.get("vector", p.score) >= self.min_similarity for p in passages):
            passages = []
        retrieval_s = time.perf_counter() - start
        result = AnswerResult(question, standalone, "", "", [], passages, True, self.model_label,
                              self.retriever is not None, retrieval_s=retrieval_s)
        if self.retriever is not None and not passages:
            result.text = result.raw_text = NOT_COVERED
            result.covered = False
            result.ttft_s = result.total_s = time.perf_counter() - start
            yield NOT_COVERED
            yield result
            return

        shown: list[Passage] = []
        for i, p in enumerate(passages, 1):
            clean, changed = sanitize(p.text)
            if changed:
                result.sanitized.append(i)
            shown.append(Passage(**{**p.__dict__, "text": clean}))

        raw, usage = "", {}
        try:
            for chunk in self.model.stream(_to_messages({"messages": self.prompt(standalone, shown, history)})):
                piece = chunk.content if isinstance(chunk.content, str) else ""
                usage = getattr(chunk, "usage_metadata", None) or usage
                if piece:
                    if not raw:
                        result.ttft_s = time.perf_counter() - start
                    raw += piece
                    yield piece
        except Exception as exc:  # shown in the chat; the conversation is kept
            raise ChainError(explain_error(exc), partial=raw) from exc
        result.total_s = time.perf_counter() - start
        result.input_tokens = int(usage.get("input_tokens", 0) or 0)
        result.output_tokens = int(usage.get("output_tokens", 0) or 0)
        result.raw_text = raw
        if self.retriever is None:
            result.text = raw.strip()
        elif is_not_covered(raw):
            result.text, result.covered = NOT_COVERED, False
        else:
            checked = check(raw, passages)
            result.text, result.citations, result.removed_markers = checked.text, checked.citations, checked.removed
        yield result

    def run(self, question: str, history: Sequence[dict[str, str]] = ()) -> AnswerResult:
        for item in self.stream(question, history):
            if isinstance(item, AnswerResult):
                return item
        raise ChainError("The chain ended without an answer.")


def explain_error(exc: BaseException) -> str:
    """An exception from a model, in plain words for the chat."""
    names = {c.__name__.removeprefix("OpenAI") for c in type(exc).__mro__}  # langchain-openai wraps openai's errors
    name = type(exc).__name__
    text = str(exc)
    if "AuthenticationError" in names:
        return "OpenAI refused the API key (401). Check OPENAI_API_KEY in secrets or the environment."
    if "RateLimitError" in names:
        if "quota" in text.lower():
            return "OpenAI says the account is out of quota (429): check billing, then try again."
        return "OpenAI is rate-limiting requests (429): wait a moment and ask again."
    if "NotFoundError" in names:
        return f"The server does not know this model, or the key cannot use it (404): {_short(text)}"
    if "PermissionDeniedError" in names:
        return f"The key is not allowed to use this model (403): {_short(text)}"
    if names & {"APIConnectionError", "APITimeoutError", "ConnectError"}:
        return "Cannot reach the model server: check OPENAI_BASE_URL and the network."
    return f"The model failed while answering ({name}): {_short(text)}"


def _short(text: str, n: int = 300) -> str:
    text = re.sub(r"sk-[A-Za-z0-9_\-]{6,}", "sk-***", text)  # never echo a key back
    return text if len(text) <= n else text[:n] + "..."
