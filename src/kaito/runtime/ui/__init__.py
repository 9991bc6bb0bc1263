"""The chat page that the model server and the RAG service both serve at `/ui`.

Everything ships in this package (`static/`: one HTML file, one script, one stylesheet; no build
step, no CDN). `router.build_router()` is all a service mounts; the page talks to the same origin's
OpenAI API (`/v1/models`, `/v1/chat/completions`) and, where `/indexes` answers (the RAG service),
offers its indexes and shows the `source_nodes` of each answer.
"""
