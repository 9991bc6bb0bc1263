"""The RAG service's request limits (`kaito.runtime.limits`, mounted by its app): a body past its bound
is 413 and drained, JSON nested deeper than the bound is 400 before any parser runs."""

from __future__ import annotations

from kaito.runtime import limits


async def test_body_and_depth_limits(make_rag):
    rag = await make_rag()

    async def chunks():
        piece = b"x" * (1024 * 1024)
        for _ in range(limits.RAG_SERVICE.max_body // len(piece) + 2):
            yield piece

    big = await rag.client.post("/index", content=chunks(), headers={"content-type": "application/json"})
    assert big.status_code == 413 and "larger than" in big.json()["detail"]

    deep = b'{"index_name": "a", "documents": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    nested = await rag.client.post("/index", content=deep, headers={"content-type": "application/json"})
    assert nested.status_code == 400 and "nests deeper than" in nested.json()["detail"]

    await rag.index("fine", "a document about limits")  # a well-formed request still goes through
