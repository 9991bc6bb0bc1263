"""Headless Debian Chromium driven by Playwright's Python package, for the browser tests.

Chromium is the machine's (`/usr/bin/chromium`, installed by `scripts/setup-browser`): Playwright's
own browser download is never used (`executable_path`). The flags keep it off the network this
sandbox does not have. If it cannot start, the test fails saying why: a browser test that skips
would let a broken page pass. Screenshots go to `artefacts_dir()` (printed at the end of the run);
with `KAITO_UPDATE_SCREENSHOTS=1` the README's copies in `docs/img/` are refreshed too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("KAITO_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
TIMEOUT_MS = 15_000


def artefacts_dir() -> Path:
    path = Path(os.environ.get("KAITO_TEST_ARTEFACTS") or Path(tempfile.gettempdir()) / "kaito-test-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def browser_context(viewport: tuple[int, int] = (1200, 800)) -> Iterator[object]:
    """A Playwright browser context in a fresh profile; fails the test clearly when it cannot start."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run ./scripts/setup-browser (apt-get install -y chromium)",
                    pytrace=False)
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run ./scripts/setup (it is in kaito[dev])", pytrace=False)
    profile = tempfile.mkdtemp(prefix="kaito-chromium-")
    playwright = sync_playwright().start()
    try:
        try:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS,
                viewport={"width": viewport[0], "height": viewport[1]}, timeout=60_000)
        except Error as exc:
            pytest.fail(f"headless Chromium ({CHROMIUM}) did not start: {str(exc).splitlines()[0]}", pytrace=False)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()
    finally:
        playwright.stop()
        shutil.rmtree(profile, ignore_errors=True)


def save_screenshot(page, name: str) -> Path:
    """Screenshot `page` as `name` in the artefacts folder (and in docs/img when asked to)."""
    path = artefacts_dir() / name
    page.screenshot(path=str(path))
    if os.environ.get("KAITO_UPDATE_SCREENSHOTS"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / name)
    return path
