"""The RAG service (KAITO's RAGEngine runtime): index documents, retrieve with hybrid search, chat with context.

`python -m kaito.runtime.rag` (or `kaito rag serve`); the environment contract is in `settings.py`.
"""
