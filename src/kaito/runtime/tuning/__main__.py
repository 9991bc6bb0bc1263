"""`python -m kaito.runtime.tuning`: run one tuning job and exit with a status that names the failure.

Errors the user can fix print one line (`error: …`) and exit with the code of their kind
(config 2, data 3, hardware 4, output 5). Anything else is a bug: one line, exit 1, and the
traceback only with KAITO_DEBUG=1.
"""

from __future__ import annotations

import os
import sys


def _one_line(exc: BaseException) -> str:
    """A library's multi-line message (transformers' offline advice, say) as one line: fix included."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from kaito.runtime.tuning.errors import TuningError

    try:
        from kaito.runtime.tuning import settings, trainer

        tune = settings.compute_settings(list(sys.argv[1:] if argv is None else argv), prog=prog)
        trainer.run(tune)
    except TuningError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; run again with the same --output to resume from the last checkpoint", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: keep the user's screen clean
        if os.environ.get("KAITO_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {_one_line(exc)} (set KAITO_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
