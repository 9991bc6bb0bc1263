"""The RAGEngine controller (kaito-v0.12.md §4.2): observe → plan → execute → status, on the shared queue.

`observe` reads the engine and its world (nodes and NodeClaims for `compute`, revisions, its Service
and Deployment, and the Workspace its `inferenceService.url` names, resolved through `target`);
`plan` and `status` are pure; `reconciler` runs one reconcile; `watches` is the kind as the manager
drives it (which events wake which engine).
"""
