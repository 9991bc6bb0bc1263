"""Keeps libraries a run does not use from being imported, so they cannot print into it.

peft imports bitsandbytes whenever it is installed (`peft/helpers.py` at import, its LoRA layer
dispatch again), and bitsandbytes, on a machine without CUDA or its optional `kernels` package,
prints a kernel warning as it loads. A LoRA run or a model server in full precision never calls it,
so that warning is noise that sends people looking for a problem that is not there. Marking the
module absent (`sys.modules[name] = None`, Python's documented way to make an import fail) makes
`import` raise ImportError and `importlib.util.find_spec` answer None, which is exactly what peft
and transformers do when the package is not installed: they take their plain code paths.
"""

from __future__ import annotations

import sys
import warnings

QUANTIZATION = ("bitsandbytes",)
# Deprecations one library raises about another's use of it: nothing a kaito user can act on.
FOREIGN_DEPRECATIONS = (
    r"`is_gradient_checkpointing` is deprecated",  # peft calling transformers (both up to date)
)


def keep_out(names: tuple[str, ...] = QUANTIZATION) -> None:
    """Make these modules unimportable in this process, unless something already imported them."""
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def quiet_run(*, quantized: bool) -> None:
    """What a training or serving run calls before importing peft: keep bitsandbytes out unless the
    run quantizes, and hide deprecation warnings between libraries that the user cannot act on."""
    if not quantized:
        keep_out(QUANTIZATION)
    for message in FOREIGN_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
