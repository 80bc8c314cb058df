"""Any object with ``search(query, k=..., **kw) -> list[Passage]`` as a LangChain retriever.

The answer chain takes a ``BaseRetriever``. Replays and test doubles that only implement ``search`` (the
grounding bench's recorded passages, for instance) are wrapped here instead of keeping a second code path.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import SkipValidation


class PassageSearchRetriever(BaseRetriever):
    """Calls ``source.search(query, **kwargs)`` and returns the passages as Documents."""

    source: SkipValidation[Any]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [p.to_document() for p in self.source.search(query, **kwargs)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # BaseRetriever's default async path drops per-call arguments (k, threshold...): run ours in a thread
        return await run_in_executor(None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(),
                                     **kwargs)


def as_retriever(obj: Any) -> BaseRetriever | None:
    """``obj`` itself when it is a LangChain retriever, wrapped when it only has ``search``; None stays None."""
    if obj is None or isinstance(obj, BaseRetriever):
        return obj
    if callable(getattr(obj, "search", None)):
        return PassageSearchRetriever(source=obj)
    raise TypeError(f"{type(obj).__name__} is neither a LangChain BaseRetriever nor has a search() method")
