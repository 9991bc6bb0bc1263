"""Processes: the in-cluster operator and the local control plane (ARCHITECTURE, room `operator`).

The controller room holds the reconcile logic and never runs a process; this room wires it into
one: leader election, probe and metrics endpoints, signals and JSON logs for `kaito operator`
(beside the admission webhook, which this room may import), and the store + controller +
provisioner + runner of `kaito up`. Only `kaito.cli` imports this room.
"""
