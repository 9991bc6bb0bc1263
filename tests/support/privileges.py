"""Run a child process without root's right to read and write any file, so permission tests mean
what they say when the tests run as root (a normal user has neither capability dropped here)."""

from __future__ import annotations

import ctypes
import os

_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 24, 1, 2


def without_root_file_rights() -> None:  # a `preexec_fn`: runs in the child, before exec
    """Drop the two capabilities that let root read and write files regardless of their modes."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
            if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
