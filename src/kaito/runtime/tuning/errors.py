"""Typed errors of the trainer and the exit code each one maps to.

The trainer runs as a Kubernetes Job and as `kaito tune`: both want a short message naming the
cause and a distinct exit status, never a Python traceback. Every failure the user can fix is
raised as one of these; `__main__` turns them into a message and the exit code.
"""

from __future__ import annotations


class TuningError(Exception):
    """A failure the user can act on; `exit_code` tells the caller which kind."""

    exit_code = 1


class ConfigError(TuningError):
    """The training config (file, template or command-line override) is invalid."""

    exit_code = 2


class DataError(TuningError):
    """A dataset file, URL or row cannot be used; the message names the file and the row."""

    exit_code = 3


class HardwareError(TuningError):
    """The requested method needs hardware this machine lacks (QLoRA without CUDA)."""

    exit_code = 4


class OutputError(TuningError):
    """The output directory cannot be used (foreign checkpoints, not writable)."""

    exit_code = 5
