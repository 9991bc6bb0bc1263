"""How the local runner turns a pod template into processes on this machine (pure translation).

A container becomes a command line: `python`/`python3` becomes this interpreter (a vLLM model
server's, the interpreter vLLM is installed in), `/bin/sh -c` runs through the system shell. Paths
the container would see (volume mount paths, an image's own files) are rewritten to folders under
`$KAITO_HOME` (hostPath and PVC volumes never outside it), container port 5000 becomes a free local
port (`--port=5000` or `--port 5000`), `--host=0.0.0.0` becomes 127.0.0.1 and `--device`/
`--device_map cuda` becomes `cpu` on a machine without GPUs. For vLLM: `--download-dir` becomes the
machine's one model cache (every pod here shares it, instead of a download per pod into its
emptyDir), and the KV-cache events publisher of `--kv-events-config` binds its container port's
local port on 127.0.0.1 instead of 5557 on every interface.
Which containers can run here at all is `classify_container`'s answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ContainerWay = Literal["runtime", "local-image", "local-push", "needs-cluster"]
PYTHONS = ("python", "python3", "/usr/bin/python", "/usr/bin/python3", "/usr/local/bin/python",
           "/usr/local/bin/python3")
SHELLS = ("/bin/sh", "sh", "/bin/bash", "bash", "/busybox/sh")
LOCAL_HOST = "127.0.0.1"
THIS_MACHINE = "local"  # `spec.nodeName` of a pod that asks for no particular node: it runs on this machine
GPU_RESOURCE = "nvidia.com/gpu"


class PodConfigError(Exception):
    """A pod cannot start: a referenced ConfigMap/Secret key is missing, a volume kind unknown, ..."""


def compute_template_hash(template: Mapping[str, Any]) -> str:
    """Stable short hash of a pod template (Kubernetes' pod-template-hash plays this role)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:8]


def build_image_dir(images_root: Path, image: str) -> Path:
    """Where a local image's root filesystem lives: `<root>/<registry>/<repo>/<tag>`."""
    ref, _, digest = image.partition("@")
    name, tag = ref, "latest"
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = ref.rpartition(":")
    if digest:
        tag = digest.replace(":", "-")
    return images_root.joinpath(*name.split("/"), tag)


def classify_container(container: Mapping[str, Any], *, is_runtime_image: Callable[[str], bool],
                       images_root: Path, is_push_sidecar: bool) -> ContainerWay:
    image = container.get("image") or ""
    if is_runtime_image(image):
        return "runtime"
    if is_push_sidecar:
        return "local-push"
    if build_image_dir(images_root, image).is_dir():
        return "local-image"
    return "needs-cluster"


PUSH_SIDECAR = "pusher"  # a tuning Job's container that publishes the adapter image (manifests/tuning.py)


def classify_pod_containers(pod_spec: Mapping[str, Any], *, is_runtime_image: Callable[[str], bool],
                            images_root: Path, runs_to_completion: bool) -> list[tuple[Mapping[str, Any], ContainerWay]]:
    """Each init and main container of a pod with how it runs here; a Job's `pusher` is the push sidecar."""
    containers = list(pod_spec.get("initContainers") or []) + list(pod_spec.get("containers") or [])
    return [(c, classify_container(c, is_runtime_image=is_runtime_image, images_root=images_root,
                                   is_push_sidecar=runs_to_completion and c.get("name") == PUSH_SIDECAR))
            for c in containers]


# -- scheduling ------------------------------------------------------------------------------------


def _expression_matches(expr: Mapping[str, Any], node_labels: Mapping[str, str]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return node_labels.get(key) in values
    if op == "NotIn":
        return node_labels.get(key) not in values
    if op == "Exists":
        return key in node_labels
    if op == "DoesNotExist":
        return key not in node_labels
    return False


def node_fits(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeSelector and required node affinity (terms OR-ed, expressions AND-ed), as the scheduler does."""
    node_labels = (node.get("metadata") or {}).get("labels") or {}
    if any(node_labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    return any(all(_expression_matches(e, node_labels) for e in t.get("matchExpressions") or []) for t in terms)


# -- environment -----------------------------------------------------------------------------------


def build_env(container: Mapping[str, Any], namespace: str, pod_name: str,
              lookup: Callable[[str, str, str], Mapping[str, str] | None]) -> dict[str, str]:
    """The container's `env` with ConfigMap/Secret references resolved.

    `lookup(kind, namespace, name)` returns the decoded data of a ConfigMap or Secret, or None.
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref:
                data = lookup(kind, namespace, ref.get("name") or "")
                if data is None and not ref.get("optional"):
                    raise PodConfigError(f"{kind} {ref.get('name')!r} (envFrom) not found")
                env.update({(source.get("prefix") or "") + k: v for k, v in (data or {}).items()})
    for item in container.get("env") or []:
        name = item.get("name") or ""
        if "value" in item:
            env[name] = _expand(str(item.get("value") or ""), env)
            continue
        value_from = item.get("valueFrom") or {}
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            ref = value_from.get(key)
            if ref:
                data = lookup(kind, namespace, ref.get("name") or "")
                if data is None or ref.get("key") not in data:
                    if ref.get("optional"):
                        break
                    raise PodConfigError(
                        f"env {name}: key {ref.get('key')!r} of {kind} {ref.get('name')!r} not found")
                env[name] = data[ref["key"]]
        field_ref = (value_from.get("fieldRef") or {}).get("fieldPath")
        if field_ref:
            env[name] = {"metadata.name": pod_name, "metadata.namespace": namespace,
                         "status.podIP": LOCAL_HOST, "spec.nodeName": THIS_MACHINE}.get(field_ref, "")
    return env


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` references to earlier variables."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


# -- volumes and paths -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumePlan:
    """Where each volume of a pod lives on this machine, and which files ConfigMaps/Secrets put there."""

    dirs: dict[str, Path]
    files: dict[Path, str] = field(default_factory=dict)


def plan_volumes(pod_spec: Mapping[str, Any], *, volumes_root: Path, namespace: str, pod_name: str,
                 lookup: Callable[[str, str, str], Mapping[str, str] | None]) -> VolumePlan:
    dirs: dict[str, Path] = {}
    files: dict[Path, str] = {}
    pod_dir = volumes_root / "pods" / namespace / pod_name
    for vol in pod_spec.get("volumes") or []:
        name = vol.get("name") or ""
        if "emptyDir" in vol:
            dirs[name] = pod_dir / name
        elif "hostPath" in vol:
            # Sandboxed under the state directory: a Workspace never writes to the real /etc.
            path = str((vol["hostPath"] or {}).get("path", name)).strip("/")
            dirs[name] = _inside(volumes_root / "hostpath", path, f"volume {name}: hostPath {path!r}")
        elif "persistentVolumeClaim" in vol:
            claim = str((vol["persistentVolumeClaim"] or {}).get("claimName") or name)
            dirs[name] = _inside(volumes_root / "pvc" / namespace, claim, f"volume {name}: claimName {claim!r}")
        elif "configMap" in vol or "secret" in vol or "projected" in vol:
            dirs[name] = pod_dir / name
            sources = ((vol.get("projected") or {}).get("sources") or []) if "projected" in vol else [vol]
            for src in sources:
                for kind, key, name_key in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName"),
                                            ("Secret", "secret", "name")):
                    ref = src.get(key)
                    if not ref or not ref.get(name_key):
                        continue
                    data = lookup(kind, namespace, ref[name_key])
                    if data is None:
                        if ref.get("optional"):
                            break
                        raise PodConfigError(f"volume {name}: {kind} {ref[name_key]!r} not found")
                    items = ref.get("items") or [{"key": k, "path": k} for k in data]
                    for item in items:
                        if item.get("key") in data:
                            files[dirs[name] / item.get("path", item["key"])] = data[item["key"]]
                    break
        else:
            raise PodConfigError(f"volume {name}: this kind of volume needs a cluster")
    return VolumePlan(dirs, files)


def _inside(root: Path, relative: str, what: str) -> Path:
    """`root/relative`, refused when `..` or a symlink would lead it out of `root` (the sandbox)."""
    path = root / relative
    resolved, base = path.resolve(), root.resolve()
    if resolved != base and base not in resolved.parents:
        raise PodConfigError(f"{what} leads outside the local volumes folder {root}; refused")
    return path


def build_path_map(container: Mapping[str, Any], plan: VolumePlan, image_dir: Path | None) -> dict[str, str]:
    """Container path → local path: mount paths, then the top-level folders of a local image."""
    mapping: dict[str, str] = {}
    if image_dir is not None and image_dir.is_dir():
        for entry in image_dir.iterdir():
            mapping["/" + entry.name] = str(entry)
    for mount in container.get("volumeMounts") or []:
        path = (mount.get("mountPath") or "").rstrip("/")
        if path == "/dev/shm" or mount.get("name") not in plan.dirs:
            continue  # shared memory is the host's own here
        local = plan.dirs[mount["name"]]
        if mount.get("subPath"):
            local = local / mount["subPath"]
        mapping[path] = str(local)
    return mapping


def plan_nested_mounts(container: Mapping[str, Any], plan: VolumePlan) -> list[tuple[Path, Path]]:
    """(link, target) for each volume a container mounts inside another of its mounts.

    In a container, a volume mounted at `/mnt/adapter/a` shows up when `/mnt/adapter` is listed.
    Here each volume is its own folder, so the parent's folder gets a symlink `a` to the nested
    volume: a program that lists the parent (the model server looking for adapters) finds it; one
    that opens the full path goes straight to the volume through the path map.
    """
    mounts = build_path_map(container, plan, None)
    out = []
    for path, local in sorted(mounts.items()):
        parents = [p for p in mounts if path.startswith(p + "/")]
        if parents:
            parent = max(parents, key=len)
            out.append((Path(mounts[parent]) / path[len(parent) + 1:], Path(local)))
    return out


def rewrite_paths(text: str, mapping: Mapping[str, str]) -> str:
    """Replace container paths by local ones, longest first, in one pass (no double rewriting)."""
    if not mapping:
        return text
    keys = sorted(mapping, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w.\-/])(" + "|".join(re.escape(k) for k in keys) + r")(?=[/\s\"';:&|)*]|$)")
    return pattern.sub(lambda m: mapping[m.group(1)], text)


VLLM_MODULES = ("kaito.runtime.inference", "kaito.runtime.inference.multinode")
KV_EVENTS_PORT = 5557  # vLLM's default KV-cache events endpoint, tcp://*:5557


def is_vllm_container(container: Mapping[str, Any]) -> bool:
    """Whether a container runs kaito's model server with the vLLM engine (KAITO v0.12's vLLM pods)."""
    argv = [str(c) for c in container.get("command") or []] + [str(a) for a in container.get("args") or []]
    if not argv or argv[0] not in PYTHONS or "-m" not in argv:
        return False
    module = argv[argv.index("-m") + 1] if argv.index("-m") + 1 < len(argv) else ""
    engine = any(a == "--engine=vllm" or (a == "--engine" and b == "vllm") for a, b in zip(argv, [*argv[1:], ""], strict=True))
    return module in VLLM_MODULES and engine


def build_argv(container: Mapping[str, Any], mapping: Mapping[str, str], *, ports: Mapping[int, int],
               has_gpu: bool, python: str | None = None, model_cache: str | None = None) -> list[str]:
    """The local command line of a container (see the module docstring for the rewrites).

    `python`: the interpreter of `python` commands (default: this one); `model_cache`: the model
    cache `--download-dir` is pointed at (None: kept)."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if not command:
        raise PodConfigError(f"container {container.get('name')}: no command (an image entrypoint needs a cluster)")
    if command[0] in PYTHONS:
        command[0] = python or sys.executable
    elif command[0] in SHELLS:
        command[0] = "/bin/sh"
    argv = [rewrite_paths(part, mapping) for part in command + args]
    local = _LocalValues(ports=ports, has_gpu=has_gpu, model_cache=model_cache)
    out: list[str] = []
    pending: str | None = None  # a flag written as `--port 5000` whose value is the next part
    for part in argv:
        if pending is not None and not part.startswith("-"):
            out.append(local.rewrite(pending, part) or part)
            pending = None
            continue
        flag, eq, value = part.partition("=")
        if eq:
            new = local.rewrite(flag, value)
            out.append(f"{flag}={new}" if new is not None else part)
        else:
            pending = part if part in _REWRITTEN_FLAGS else None
            out.append(part)
    return out


_REWRITTEN_FLAGS = ("--port", "--host", "--device", "--device_map", "--device-map", "--download-dir",
                    "--kv-events-config")


@dataclass(frozen=True)
class _LocalValues:
    ports: Mapping[int, int]
    has_gpu: bool
    model_cache: str | None

    def rewrite(self, flag: str, value: str) -> str | None:
        """The local value of one flag (`--port=N` and `--port N` alike), or None to keep it."""
        if flag == "--port" and value.isdigit() and int(value) in self.ports:
            return str(self.ports[int(value)])
        if flag == "--host" and value in ("0.0.0.0", "::"):
            return LOCAL_HOST
        if flag in ("--device", "--device_map", "--device-map") and value == "cuda" and not self.has_gpu:
            return "cpu"
        if flag == "--download-dir" and self.model_cache:
            return self.model_cache
        if flag == "--kv-events-config":
            return self._kv_events(value)
        return None

    def _kv_events(self, value: str) -> str | None:
        try:
            config = json.loads(value)
        except ValueError:
            return None
        if not isinstance(config, dict) or not config.get("enable_kv_cache_events"):
            return None
        endpoint = str(config.get("endpoint") or f"tcp://*:{KV_EVENTS_PORT}")
        scheme, _, address = endpoint.partition("://")
        port = address.rpartition(":")[2]
        if scheme != "tcp" or not port.isdigit() or int(port) not in self.ports:
            return None
        return json.dumps({**config, "endpoint": f"tcp://{LOCAL_HOST}:{self.ports[int(port)]}"},
                          separators=(",", ":"))


def container_ports(containers: Sequence[Mapping[str, Any]]) -> list[int]:
    return sorted({int(p["containerPort"]) for c in containers for p in c.get("ports") or [] if p.get("containerPort")})


def compute_probe_port(http_get: Mapping[str, Any], containers: Sequence[Mapping[str, Any]]) -> int:
    """The container port an httpGet probe targets: a number, or the name of a container port."""
    port = http_get.get("port")
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    named = {p.get("name"): int(p["containerPort"]) for c in containers for p in c.get("ports") or []
             if p.get("name") and p.get("containerPort")}
    if port not in named:
        known = ", ".join(sorted(named)) or "none"
        raise PodConfigError(f"httpGet port {port!r} is not a named container port (named ports: {known})")
    return named[port]
