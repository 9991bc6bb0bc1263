"""`python -m kaito.runtime.rag` (also `kaito rag serve`): settings, embedder, restore, then serve.

Exit codes: 0 stopped; 2 a bad setting (the message names it); 1 the service could not start
(embedding model not loadable, Qdrant not reachable) — always one line on stderr, no traceback.
The embedding model loads before the port opens (KAITO's probes wait 30 s / 600 s), with progress
in the log; the latest snapshot is restored before the first request is served.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from kaito.runtime.rag.settings import SettingsError, build_settings

    debug = os.environ.get("DEBUG_MODE", "").lower() == "true"
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = build_settings(sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


def serve(settings) -> int:
    from kaito.runtime.rag.embedding import LocalEmbedder
    from kaito.runtime.rag.server import build_embedder

    try:
        embedder = build_embedder(settings)
        if isinstance(embedder, LocalEmbedder):
            embedder.load()
    except ImportError as exc:
        print(f"error: the RAG service needs the `rag` profile (pip install 'kaito[rag]'): {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"error: MODEL_ID: cannot load embedding model {settings.embedding_model!r}: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(_serve(settings, embedder))


async def _serve(settings, embedder) -> int:
    import uvicorn

    from kaito.runtime import limits
    from kaito.runtime.rag.app import create_app
    from kaito.runtime.rag.server import StartupError, build_runtime

    try:
        runtime = build_runtime(settings, embedder)
        await runtime.start()
    except ImportError as exc:
        print(f"error: VECTOR_DB_TYPE={settings.vector_db} needs a package that is missing: {exc}", file=sys.stderr)
        return 1
    except (StartupError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app = create_app(runtime)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info",
                                           lifespan="on", **limits.uvicorn_options(limits.RAG_SERVICE)))
    await server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
