"""Fetches dataset URLs into a local folder: streamed, with progress and a size limit.

KAITO downloads `tuning.input.urls` with curl in an init container; the trainer here takes URLs
directly, so a user can run `kaito tune --data https://…` anywhere. The file is written to a
`.part` name and renamed when complete, so a failed download never looks like data.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

from kaito.runtime.tuning.errors import DataError

_CHUNK = 1 << 20


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def compute_file_name(url: str) -> str:
    """The local file name of a URL, as KAITO's downloader names it (`?`, `=`, `&` → `_`)."""
    parts = urlsplit(url)
    base = parts.path.rstrip("/").rsplit("/", 1)[-1] or "data"
    if parts.query:
        base = f"{base}?{parts.query}"
    return re.sub(r"[?=&]", "_", base)


def compute_download_name(index: int, url: str) -> str:
    """The file name of the `index`-th URL of a run: URLs often share a base name (`a/train.jsonl`,
    `b/train.jsonl`), so the index keeps each its own file; the suffix still names the format."""
    return f"{index:03d}-{compute_file_name(url)}"


def download(url: str, folder: Path, max_bytes: int, timeout_s: float = 60.0, name: str | None = None) -> Path:
    """Download `url` into `folder` as `name` (default: the URL's file name); refuse bodies above
    `max_bytes`; return the file's path."""
    import httpx
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or compute_file_name(url))
    partial = target.with_name(target.name + ".part")
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout_s) as response:
            if response.status_code != 200:
                raise DataError(f"download of {url} failed: HTTP {response.status_code}")
            declared = int(response.headers.get("content-length") or 0)
            if declared > max_bytes:
                raise DataError(f"download of {url} refused: {declared} bytes is above the limit of "
                                f"{max_bytes} bytes (DatasetConfig.max_download_bytes)")
            progress = Progress(TextColumn("[bold]download[/] {task.description}"), BarColumn(),
                                DownloadColumn(), TransferSpeedColumn(), transient=True,
                                disable=not sys.stderr.isatty())
            received = 0
            with progress, partial.open("wb") as out:
                task = progress.add_task(target.name, total=declared or None)
                for chunk in response.iter_bytes(_CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise DataError(f"download of {url} stopped: more than {max_bytes} bytes "
                                        f"(DatasetConfig.max_download_bytes)")
                    out.write(chunk)
                    progress.update(task, advance=len(chunk))
            if received == 0:
                raise DataError(f"download of {url} returned an empty body")
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise DataError(f"download of {url} failed: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    print(f"downloaded {url} → {target} ({received} bytes)", file=sys.stderr)
    return target
