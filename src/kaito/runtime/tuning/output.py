"""The output directory: resumable checkpoints, and an adapter that appears all at once.

Layout (the adapter sits at the top, where KAITO's upload sidecar and the model server look):

    <output>/checkpoints/checkpoint-<step>/   Trainer checkpoints; a restart resumes from the last
    <output>/checkpoints/run.json            what these checkpoints were trained on
    <output>/checkpoints/set-aside/          checkpoints that did not load, kept for a look
    <output>/adapter_config.json, adapter_model.safetensors, tokenizer files
    <output>/fine_tuning_completed.txt       written last: KAITO's "adapter is complete" marker

The output directory is often a mounted volume that cannot itself be renamed, so the adapter is
written into a temporary directory inside it, then each file is renamed into place (same
filesystem, atomic per file) with the old marker removed first and the new marker renamed in
last. A reader that waits for the marker — KAITO's sidecar does — never sees a half-written
adapter, and a run that fails leaves no marker behind.

A checkpoint can be complete on disk and still fail to load (a disk that lost blocks, a copy cut
short); resuming from it would fail on every restart, so a Job would never finish. Before a resume,
`check_loadable` reads back every file the Trainer reads on resume, the way the Trainer reads it;
one that fails is moved to `set-aside/` (never deleted) with a warning, and the next older
complete checkpoint is used.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kaito.runtime.tuning.errors import OutputError

MARKER = "fine_tuning_completed.txt"
CHECKPOINTS = "checkpoints"
RUN_FILE = "run.json"
SET_ASIDE = "set-aside"
_COMPLETE_CHECKPOINT_FILE = "trainer_state.json"  # the Trainer writes it last
_FILE_MODE = 0o644


def checkpoints_dir(output: Path) -> Path:
    return output / CHECKPOINTS


def read_marker(output: Path) -> dict[str, Any] | None:
    """The completion metadata of a finished output directory, or None when it is not finished."""
    try:
        return json.loads((output / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def find_resume_checkpoint(output: Path, loads: Callable[[Path], str | None] | None = None,
                           warn: Callable[[str], None] | None = None) -> Path | None:
    """The newest checkpoint that was fully written (and, given `loads`, loads); torn ones (killed
    mid-save) are removed, ones that do not load are set aside with a `warn`ing."""
    folder = checkpoints_dir(output)
    if not folder.is_dir():
        return None
    steps = []
    for child in folder.iterdir():
        name, _, step = child.name.partition("-")
        if child.is_dir() and name == "checkpoint" and step.isdigit():
            steps.append((int(step), child))
    for _, child in sorted(steps, reverse=True):
        if not (child / _COMPLETE_CHECKPOINT_FILE).is_file():
            shutil.rmtree(child, ignore_errors=True)
            continue
        problem = loads(child) if loads is not None else None
        if problem is None:
            return child
        aside = folder / SET_ASIDE / f"{child.name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
        aside.parent.mkdir(exist_ok=True)
        os.replace(child, aside)
        if warn is not None:
            warn(f"checkpoint {child} does not load ({problem}); set aside as {aside}, "
                 "resuming from the previous complete checkpoint if there is one")
    return None


# What the Trainer reads back on resume; training_args.bin is not among them.
_NOT_READ_ON_RESUME = frozenset({"training_args.bin"})


def check_loadable(checkpoint: Path) -> str | None:
    """Why `checkpoint` would fail to load on resume (file and error), or None when it loads.

    Each file is read as the Trainer reads it: JSON, safetensors, and `torch.load(weights_only=True)`
    under transformers' own allowlist of safe globals."""
    import safetensors.torch
    import torch
    from transformers import TrainerState
    from transformers.trainer_pt_utils import safe_globals

    for path in sorted(checkpoint.iterdir()):
        if not path.is_file() or path.name in _NOT_READ_ON_RESUME:
            continue
        try:
            if path.name == _COMPLETE_CHECKPOINT_FILE:
                TrainerState.load_from_json(str(path))
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".safetensors":
                safetensors.torch.load_file(path, device="cpu")
            elif path.suffix in (".pt", ".pth", ".bin"):
                with safe_globals():
                    torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure to read it back is the finding
            return f"{path.name}: {type(exc).__name__}: {str(exc)[:200]}"
    return None


# Keys a restart may change and still resume: how long to train (a pod restarted with a longer
# run, or a killed run continued to a new step count).
RESUMABLE_CHANGES = ("training.max_steps", "training.num_train_epochs")
_SHOWN_CHANGES = 8
_UNSET = object()


def compute_changes(previous: dict[str, Any], current: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """`key old→new` for every setting that differs, nested keys dotted (`lora.r 8→16`)."""
    before, after = _flatten(json.loads(json.dumps(previous, default=str))), _flatten(
        json.loads(json.dumps(current, default=str)))
    return [f"{key} {_show(before.get(key, _UNSET))}→{_show(after.get(key, _UNSET))}"
            for key in sorted(set(before) | set(after))
            if key not in ignore and before.get(key, _UNSET) != after.get(key, _UNSET)]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _show(value: Any) -> str:
    if value is _UNSET:
        return "unset"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 24 else text[:12] + "…"  # digests and long lists stay readable


def _summary(changes: list[str]) -> str:
    more = len(changes) - _SHOWN_CHANGES
    return ", ".join(changes[:_SHOWN_CHANGES]) + (f", and {more} more" if more > 0 else "")


def ensure_finished_matches(output: Path, marker: dict[str, Any], fingerprint: dict[str, Any]) -> None:
    """A finished output is reused only for the very same run; any other settings are refused,
    so a changed config never silently returns the old adapter."""
    changes = compute_changes(marker.get("settings") or {}, fingerprint)
    if changes:
        raise OutputError(f"output directory {output} already holds an adapter finished with different "
                          f"settings: {_summary(changes)}; use a new --output or delete it")


def ensure_same_run(output: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse to resume checkpoints made with other settings (model, data, LoRA, training);
    record ours otherwise. Only the length of training may change across a restart."""
    folder = checkpoints_dir(output)
    folder.mkdir(parents=True, exist_ok=True)
    run_file = folder / RUN_FILE
    if run_file.is_file() and any(folder.glob("checkpoint-*")):
        changes = compute_changes(json.loads(run_file.read_text()), fingerprint, ignore=RESUMABLE_CHANGES)
        if changes:
            raise OutputError(f"output directory {output} holds checkpoints made with different settings: "
                              f"{_summary(changes)}; use a new --output or delete {folder}")
    _write_atomic(run_file, json.dumps(fingerprint, indent=2, sort_keys=True, default=str))


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, path)


def build_marker(metadata: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return {"message": f"Fine-Tuning completed at {stamp}", "completed_at": stamp, **metadata}


def publish_adapter(output: Path, write: Callable[[Path], None], metadata: dict[str, Any]) -> dict[str, Any]:
    """Write the adapter with `write(staging_dir)` and move it into `output`, marker last.

    Returns the marker's content."""
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=output, prefix=".adapter-staging-"))
    try:
        write(staging)
        if not (staging / "adapter_config.json").is_file():
            raise OutputError(f"the adapter written to {staging} has no adapter_config.json")
        for path in staging.rglob("*"):
            if path.is_file():
                path.chmod(_FILE_MODE)  # readable by the server and sidecar, whatever wrote it
                with path.open("rb") as handle:
                    os.fsync(handle.fileno())
        (output / MARKER).unlink(missing_ok=True)
        for path in sorted(staging.iterdir()):
            target = output / path.name
            if target.is_dir() and not path.is_dir():
                shutil.rmtree(target)
            os.replace(path, target)
        marker = build_marker(metadata)
        _write_atomic(output / MARKER, json.dumps(marker, indent=2) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return marker


def remove_stale_staging(output: Path) -> None:
    """Staging folders of runs that were killed while publishing."""
    if output.is_dir():
        for stale in output.glob(".adapter-staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
