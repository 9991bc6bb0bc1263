"""The FastAPI router of the chat page: `GET /ui` and its two assets, read from package data.

A service mounts it with `app.include_router(build_router())`. The page needs no server-side state
and no knowledge of which service serves it: it asks the same origin's API (or the one named by
`?api=URL`). `PAGE_PATHS` are public even where the API needs a key: the page holds no secret, and
it sends the key the user types with each API call.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

ASSETS = {"chat.js": "text/javascript; charset=utf-8", "chat.css": "text/css; charset=utf-8"}
PAGE_PATHS = frozenset({"/ui", "/ui/", *(f"/ui/{name}" for name in ASSETS)})


def read_asset(name: str) -> bytes:
    return resources.files("kaito.runtime.ui").joinpath("static", name).read_bytes()


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

    @router.get("/ui")
    @router.get("/ui/")
    async def page() -> Response:
        return Response(read_asset("index.html"), media_type="text/html; charset=utf-8", headers=headers)

    @router.get("/ui/chat.js")
    async def script() -> Response:
        return Response(read_asset("chat.js"), media_type=ASSETS["chat.js"], headers=headers)

    @router.get("/ui/chat.css")
    async def style() -> Response:
        return Response(read_asset("chat.css"), media_type=ASSETS["chat.css"], headers=headers)

    return router
