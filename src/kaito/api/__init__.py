"""The Workspace API: the hub type, the served versions (`kaito.sh/v1alpha1`, `kaito.sh/v1beta1`) and
their lossless conversion, defaults, the admission entry point and its rules, conditions, the CRD —
and the same for InferenceSets and RAGEngines (`inferenceset`, `ragengine`, dispatched by `kinds`).

Pure: no I/O, no environment, no Kubernetes client. Other rooms speak `kaito.api.hub` and enter
through `kaito.api.conversion` (parse, convert) and `kaito.api.admission` (admit); only this package
imports the version modules.
"""
