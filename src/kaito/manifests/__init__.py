"""Pure builders: resolved inputs to plain-dict Kubernetes objects, KAITO-compatible (reference §3.2).

No client, no I/O beyond the catalog's package data, inputs never mutated, no sub-object shared
between outputs. Modules by concept:

- `ownership`: owner reference to the Workspace, workspace labels, metadata, revision annotation;
- `placement`: node affinity from `matchLabels` (+ chosen nodes), GPU tolerations and requests;
- `service`: Service `<ws>` (80→5000, 29500; LoadBalancer with `kaito.sh/enablelb: "True"`),
  headless `<ws>-headless` for multi-node presets;
- `images`: our runtime image `<registry>/kaito-runtime:<tag>` or a private preset's image;
- `inference_command`: the runtime's command line (or KAITO's torchrun for llama-2 images);
- `adapters`: adapter init containers, volume and strength env;
- `inference`: `InferenceInputs` → Deployment (one node) or StatefulSet (multi-node);
- `template`: the user's pod template as a Deployment with our placement;
- `tuning_config`, `tuning`: `TuningInputs` → default config ConfigMap and the tuning Job;
- `nodeclaim`: `karpenter.sh/v1` NodeClaims with deterministic names (crash-safe);
- `revision`: the §3.3 spec hash, ControllerRevisions and `plan_revision`;
- `workspace`: everything for one Workspace from the Workspace alone (`kaito render`).
"""
