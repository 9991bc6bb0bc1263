"""The `Cluster` protocol and its homes: a real API server (lightkube) and the embedded local cluster."""
