"""The InferenceSet controller (kaito-v0.12.md §3.3): one child Workspace per replica.

`observe` reads the set, its children, revisions and (with the gateway option) its InferencePool
objects into a frozen snapshot; `plan` decides every write as a pure function of it (`status` the
status); `reconciler` carries the plan out; `watches` tells the shared manager which events wake which set.
"""
