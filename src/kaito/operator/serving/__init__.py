"""The local cluster's own small stand-ins for the inference gateway and for KEDA (issue 15, item 4).

On a Kubernetes cluster an InferenceSet's replicas sit behind the Gateway API Inference Extension
(an InferencePool and its endpoint picker) and scale through KEDA with keda-kaito-scaler. The
embedded local cluster has neither, so this package gives each InferenceSet:

- `gateway.Gateway`: one HTTP endpoint that spreads requests over the ready replicas (least
  outstanding requests, prefix affinity under a load cap, retries, ejection with back-off, SSE
  passed through, scale-from-zero hold), served by `front` (h11 on asyncio: no ASGI server in the
  base profile);
- `autoscaler.Autoscaler`: scrapes every ready replica's `/metrics` and decides replicas with
  keda-kaito-scaler's formula and HPA's behaviour (`decide.decide`, a pure function), then calls
  the scale target;
- `endpoint.InferenceSetEndpoint`: the two wired together over one `replicas.ReplicaPool`: what
  the local control plane creates per InferenceSet.

Nothing here imports the runtime or an ASGI stack: it runs in the base profile.
"""
