"""`python -m kaito.runtime.inference`: parse settings, open the port, load the model behind it."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from kaito.runtime.inference.settings import SettingsError, build_settings

    debug = os.environ.get("DEBUG_MODE", "").lower() == "true"  # KAITO's switch for debug logs
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    from kaito.runtime.inference import vllm_platform

    # vLLM's command line is vLLM's (its flags, `--max-model-len auto`, the typed runtime-parameter
    # file): it goes to vLLM's own server whole, before our settings parser could refuse any of it.
    if not {"-h", "--help"} & set(argv) and vllm_platform.wants_vllm(argv, os.environ):
        from kaito.runtime.inference.engine import EngineName
        from kaito.runtime.inference.engines import ENGINES

        return ENGINES[EngineName.VLLM].serve(argv)  # type: ignore[misc]
    try:
        settings = build_settings(argv)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return serve(settings, argv)


def serve(settings, argv: Sequence[str] = ()) -> int:
    """Run the server until it is stopped; 1 when the model failed to load."""
    import uvicorn

    from kaito.runtime.inference.app import create_app
    from kaito.runtime.inference.engines import EngineUnavailable, select_entry

    failure: list[str] = []
    server: uvicorn.Server | None = None

    def on_load_failure(message: str) -> None:
        failure.append(message)
        if server is not None:
            server.should_exit = True

    try:
        entry = select_entry(settings)
    except EngineUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if entry.serve is not None:  # a runtime with its own HTTP app takes the whole process
        return entry.serve(argv)
    engine = entry.build(settings)
    app = create_app(settings, engine, on_load_failure=on_load_failure)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info", lifespan="on")
    server = uvicorn.Server(config)
    server.run()
    if failure:
        print(f"error: model load failed: {failure[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
