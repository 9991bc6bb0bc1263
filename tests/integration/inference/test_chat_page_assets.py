"""The chat page's files as the model server serves them: public even behind an API key (the page
holds no secret; the API still needs the key), complete, and with nothing fetched from elsewhere."""

from __future__ import annotations

import re

import httpx

from kaito.runtime.ui import router


def test_page_is_public_and_the_api_is_not(gated_server):
    page = httpx.get(gated_server.base_url + "/ui", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in router.ASSETS:
        reply = httpx.get(f"{gated_server.base_url}/ui/{asset}", timeout=10)
        assert reply.status_code == 200 and reply.headers["content-type"] == router.ASSETS[asset]
        assert f"/ui/{asset}" in page.text  # the page loads each asset from this server
    assert httpx.get(gated_server.base_url + "/v1/models", timeout=10).status_code == 401


def test_no_external_resources():
    for name in ("index.html", *router.ASSETS):
        text = router.read_asset(name).decode()
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), name
        assert "import(" not in text and "@import" not in text, name
