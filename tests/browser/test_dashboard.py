"""The local dashboard of `kaito up` in a real browser.

`kaito up --detach` prints the dashboard's URL; the page starts empty; a Workspace applied during
the test (from standard input, as `cat ws.yaml | kaito apply -f -`) appears and turns ready; while
chat requests run against its model server, its tokens/s chart moves.
"""

from __future__ import annotations

import re
import threading

import httpx
import pytest

from tests.e2e.conftest import Kaito, wait_for, workspace_yaml
from tests.support.browser import browser_context, save_screenshot


@pytest.fixture
def cluster(tmp_path, tiny_model):
    import os

    home = tmp_path / "kaito-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAITO_")}
    env.update(tiny_model.env(), KAITO_HOME=str(home))
    kaito = Kaito(home, env)
    up = kaito("up", "--detach", "--dashboard-port", "0", check=True, timeout=90)
    match = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/)", up.stdout)
    assert match, up.stdout
    try:
        yield kaito, match.group(1)
    finally:
        kaito("down", timeout=60)
        assert kaito.control_plane_pid() is None
        assert kaito.pod_processes() == {}, "pod processes outlived kaito down"


def _load(endpoint: str, stop: threading.Event) -> None:
    """Chat requests, two at a time, until told to stop (bounded: at most 60 each)."""
    def one_client() -> None:
        with httpx.Client(base_url=endpoint, timeout=60) as client:
            model = client.get("/v1/models").json()["data"][0]["id"]
            for _ in range(60):
                if stop.is_set():
                    return
                client.post("/v1/chat/completions", json={
                    "model": model, "messages": [{"role": "user", "content": "count to a hundred"}],
                    "max_tokens": 48, "ignore_eos": True}).raise_for_status()

    threads = [threading.Thread(target=one_client, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_dashboard_shows_a_workspace_turning_ready_and_its_load(cluster, tiny_model):
    kaito, url = cluster
    assert kaito("dashboard", "--no-browser", check=True).stdout.strip() == url
    with browser_context(viewport=(1200, 900)) as browser:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("text=no workspaces yet")

        applied = kaito("apply", "-f", "-", input=workspace_yaml("chatbot", tiny_model.repo_id), timeout=60)
        assert applied.returncode == 0 and "workspace.kaito.sh/chatbot created" in applied.stdout, applied.stderr
        card = page.locator('.card[data-name="chatbot"]')
        card.wait_for(timeout=30_000)
        page.wait_for_selector('.card[data-name="chatbot"][data-ready="true"]', timeout=180_000)
        assert "True" in card.locator("table").first.inner_text()  # its conditions are listed

        endpoint = wait_for("the endpoint", lambda: kaito("endpoint", "chatbot").stdout.strip(), timeout=30)
        ui = kaito("ui", "chatbot", "--no-browser", check=True).stdout.strip()
        assert ui == endpoint + "/ui" and "kaito chat" in httpx.get(ui, timeout=10).text
        missing = kaito("ui", "nobody")
        assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "nobody" in missing.stderr
        assert card.locator(f'a[href="{endpoint}/ui"]').count() == 1  # the card links to the chat page
        tokens = card.locator('canvas[data-metric="tokens_per_s"]')
        tokens.wait_for()
        before = tokens.evaluate("c => c.toDataURL()")
        stop = threading.Event()
        load = threading.Thread(target=_load, args=(endpoint, stop), daemon=True)
        load.start()
        try:
            page.wait_for_function(
                """() => { const c = document.querySelector('.card[data-name="chatbot"] canvas[data-metric="tokens_per_s"]');
                           return c && Number(c.dataset.last) > 0; }""", timeout=60_000)
            moved = card.locator('canvas[data-metric="tokens_per_s"]')
            assert moved.evaluate("c => c.toDataURL()") != before  # the line left the baseline
            page.wait_for_function(  # a few seconds of load: a curve, not a dot, for the screenshot
                """() => Number(document.querySelector('.card[data-name="chatbot"] canvas[data-metric="tokens_per_s"]')
                                .dataset.points) >= 8""", timeout=30_000)
            save_screenshot(page, "dashboard.png")
        finally:
            stop.set()
            load.join(60)
        page.close()
