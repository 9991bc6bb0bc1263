"""The `Cluster` protocol and its homes: a real API server (lightkube) and the embedded local cluster.

* `protocol` — the async `Cluster` protocol, `ResourceKind` constants, `ObjectList`, `WatchEvent`;
  its docstring is the contract both homes honour.
* `errors` — typed errors (`NotFound`, `Conflict`, `Invalid`, `Gone`, `Unavailable`) and
  `is_retryable`.
* `kube` — `KubeCluster` over lightkube (`kube_wire` holds its resource classes and error mapping).
* `local` — `LocalCluster`, the SQLite object store the local control plane runs on.
* `events` — Event objects built the same way for both homes.

Nothing is imported here, so `import kaito.cluster.protocol` stays cheap for every room.
"""
