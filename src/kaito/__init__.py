"""KAITO in Python: the Workspace API, the operator, an embedded local cluster and the in-pod runtime.

Importing this package does nothing heavy: torch and transformers load only inside `kaito.runtime`.
"""

__version__ = "0.1.0"
