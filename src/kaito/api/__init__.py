"""The Workspace API (`kaito.sh/v1alpha1`): schema, defaults, validation rules, conditions, CRD.

Pure: no I/O, no environment, no Kubernetes client. Every other room speaks these types.
"""
