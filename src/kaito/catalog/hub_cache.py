"""Model sizes from what is already on this machine: the Hugging Face cache or a local model directory.

This is the one place the catalog does I/O beyond its own package data: it *reads* the local Hugging
Face cache (through huggingface_hub's cache scanner) and local directories. It never downloads and
never writes. Admission fit checks use it, injected into `CatalogFacts`, for Hub ids that the catalog
does not list, so `org/model` presets are checked against their real weight size when the weights are
cached and skipped with a warning otherwise.
"""

from __future__ import annotations

from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors",)
FALLBACK_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth")  # older checkpoints without safetensors
GIB = 1024**3


def looks_like_local_dir(name: str) -> bool:
    """A preset name written as a filesystem path rather than a catalog name or `org/model` id."""
    return name.startswith(("/", "./", "../", "~"))


def looks_like_hub_id(name: str) -> bool:
    """`org/model`: exactly one slash, both parts non-empty, not a path."""
    if looks_like_local_dir(name) or name.count("/") != 1:
        return False
    org, model = name.split("/")
    return bool(org.strip()) and bool(model.strip()) and " " not in name


def _weights_gib(sizes: dict[str, int]) -> float | None:
    for suffixes in (WEIGHT_SUFFIXES, FALLBACK_WEIGHT_SUFFIXES):
        total = sum(size for fname, size in sizes.items() if fname.endswith(suffixes))
        if total > 0:
            return total / GIB
    return None


def read_local_dir_size(path: str | Path) -> float | None:
    """GiB of weights in a model directory holding a `config.json`; None if it is not one."""
    root = Path(path).expanduser()
    if not (root / "config.json").is_file():
        return None
    sizes = {p.name: p.stat().st_size for p in root.iterdir() if p.is_file()}
    return _weights_gib(sizes)


def read_hub_cache_size(repo_id: str, cache_dir: str | Path | None = None) -> float | None:
    """GiB of weights of a cached Hub model (the revision `main` points at, else the newest); None if absent."""
    from huggingface_hub import scan_cache_dir  # lazy: only callers that want cache facts pay for it
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir)
    except (CacheNotFound, OSError):
        return None
    wanted = repo_id.lower()
    for repo in info.repos:
        if repo.repo_type != "model" or repo.repo_id.lower() != wanted or not repo.revisions:
            continue
        revisions = sorted(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified), reverse=True)
        return _weights_gib({f.file_name: f.size_on_disk for f in revisions[0].files})
    return None


def read_model_size(name: str, cache_dir: str | Path | None = None) -> float | None:
    """GiB of weights for a local model directory or a cached Hub id; None when unknown here.

    This is the callable to inject as `CatalogFacts(local_model_size=...)`.
    """
    if looks_like_local_dir(name):
        return read_local_dir_size(name)
    if looks_like_hub_id(name):
        return read_hub_cache_size(name, cache_dir)
    return None
