"""The browser layer: pages as a person sees them, in headless Chromium (see `tests/support/browser.py`).

Every test here is marked `browser` and `slow`; screenshots are saved as artefacts, and the folder is
printed at the end of the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter):
    from tests.support.browser import artefacts_dir

    shots = sorted(artefacts_dir().glob("*.png"))
    if shots:
        terminalreporter.write_line(f"browser screenshots ({len(shots)}): {artefacts_dir()}")
