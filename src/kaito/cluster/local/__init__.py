"""The embedded local cluster: a SQLite object store behind the `Cluster` protocol.

The local node provisioner and pod runner (issue 6) live beside it and talk to it through
the same protocol as the controller does.
"""

from kaito.cluster.local.cluster import LocalCluster

__all__ = ["LocalCluster"]
