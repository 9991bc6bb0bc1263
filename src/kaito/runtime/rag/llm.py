"""The LLM behind `/v1/chat/completions`: any OpenAI-style endpoint, reached over HTTP.

`LLM_INFERENCE_URL` is the full endpoint URL, as in KAITO: chat mode when its path contains
`/chat/completions`, else the legacy completions API with the messages flattened into a prompt.
`LLM_ACCESS_SECRET` goes out as `Authorization: Bearer …`. The model name is the request's `model`,
else the first id from `GET <scheme://host>/v1/models` (asked once).

Token counting is an estimate, on purpose: `ceil(UTF-8 bytes / 3)`. Byte-level BPE tokenizers
average 3.5–4.5 bytes per token on English prose and code, about 3 on CJK, so this errs towards
counting too many, which keeps prompts inside the window. KAITO counts with tiktoken, i.e. with
OpenAI's tokenizer rather than the served model's, and tiktoken fetches its tables from the
internet at first use; asking the model server to tokenize would cost a round trip per message.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any
from urllib.parse import urlparse

from kaito.runtime.rag.errors import RagError, Upstream

log = logging.getLogger("kaito.runtime.rag")
TIMEOUT_S = 300.0
OUR_KEYS = ("index_name", "context_token_ratio")


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 3)


def _version() -> str:
    try:
        return metadata.version("kaito")
    except metadata.PackageNotFoundError:
        return "dev"


class LLMClient:
    def __init__(self, url: str, secret: str | None, context_window: int, transport: Any = None) -> None:
        import httpx

        self.url = url
        self.context_window = context_window
        parsed = urlparse(url)
        self.chat_mode = "/chat/completions" in parsed.path
        self._models_url = f"{parsed.scheme}://{parsed.netloc}/v1/models"
        headers = {"User-Agent": f"KAITO-RagEngine/{_version()} (kaito-python)"}
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        self._client = httpx.AsyncClient(headers=headers, timeout=TIMEOUT_S, transport=transport)
        self._model: str | None = None

    async def close(self) -> None:
        await self._client.aclose()

    def _unreachable(self, exc: Exception) -> Upstream:
        return Upstream(f"inference endpoint {self.url} (LLM_INFERENCE_URL) unreachable: "
                        f"{exc or type(exc).__name__}")

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        try:
            response = await self._client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code >= 400:
            raise RagError(f"inference endpoint answered {response.status_code}: {_message(payload, response.text)}",
                           status=response.status_code if response.status_code < 500 else 502)
        if not isinstance(payload, dict):
            raise Upstream(f"inference endpoint {self.url} answered with something other than a JSON object")
        return payload

    async def model_name(self, requested: str | None) -> str | None:
        if requested:
            return requested
        if self._model is None:
            try:
                response = await self._client.get(self._models_url, timeout=10)
                self._model = response.json()["data"][0]["id"]
            except Exception as exc:  # the request goes out without a model then
                log.warning("could not read the model name from %s: %s", self._models_url, exc)
                return None
        return self._model

    def _require_chat(self) -> None:
        if not self.chat_mode:
            raise RagError("passthrough needs LLM_INFERENCE_URL to be a /chat/completions endpoint")

    async def passthrough(self, body: dict[str, Any]) -> dict[str, Any]:
        """Forward a chat request as it came (less our own keys)."""
        self._require_chat()
        return await self._post({k: v for k, v in body.items() if k not in OUR_KEYS})

    async def open_stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """Start a streamed passthrough; errors before the first byte raise, so they keep their status."""
        import httpx

        self._require_chat()
        request = self._client.build_request("POST", self.url, json={k: v for k, v in body.items()
                                                                       if k not in OUR_KEYS})
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            text = (await response.aread()).decode("utf-8", "replace")
            await response.aclose()
            try:
                payload = json.loads(text)
            except ValueError:
                payload = None
            raise RagError(f"inference endpoint answered {response.status_code}: {_message(payload, text)}",
                           status=response.status_code if response.status_code < 500 else 502)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for piece in response.aiter_bytes():
                    yield piece
            finally:
                await response.aclose()

        return relay()

    async def complete(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        """One answer to `messages`; returns the upstream JSON (choices[0] holds the text)."""
        if self.chat_mode:
            return await self._post({**params, "messages": messages, "stream": False})
        prompt = "".join(f"{m['role']}: {m['content']}\n\n" for m in messages) + "assistant: "
        payload = await self._post({**params, "prompt": prompt, "stream": False})
        for choice in payload.get("choices", []):
            choice["message"] = {"role": "assistant", "content": choice.get("text", "")}
        return payload


def _message(payload: Any, text: str) -> str:
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if payload.get("detail"):
            return str(payload["detail"])
    return text[:500]
