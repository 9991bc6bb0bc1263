"""Pure builders: resolved inputs to plain-dict Kubernetes objects, KAITO-compatible."""
