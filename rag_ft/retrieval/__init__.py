"""Retrieval: BM25 and vector search fused into one LangChain retriever."""
