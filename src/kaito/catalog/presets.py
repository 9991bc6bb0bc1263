"""Model presets: the typed, frozen view of `presets.yaml`.

Presets are data (ARCHITECTURE.md rule 5): adding a model is an entry in `presets.yaml` plus a golden
test. This module only defines the schema and the lookup. The schema is strict (unknown keys are
errors) and is checked when the file is first loaded, so a broken data file fails loudly with the
preset's name and the field, instead of surfacing later as a KeyError deep inside the controller.

Units: memory sizes that sizing computes with are GiB numbers (`*_gib`); sizes that go verbatim into
Kubernetes objects (`disk`) are Kubernetes quantity strings.
"""

from __future__ import annotations

import functools
import math
import re
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Access = Literal["public", "gated", "private"]
Runtime = Literal["transformers", "vllm", "llama-2"]  # llama-2: KAITO's Meta-reference torchrun server
TuningMethod = Literal["lora", "qlora"]
Origin = Literal["v0.3.2", "v0.12", "kaito-python"]

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")


class PresetFileError(ValueError):
    """`presets.yaml` does not match the schema; the message names the preset and the field."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HubSource(_Frozen):
    """Where the weights come from on the Hugging Face Hub."""

    repo: str
    revision: str | None = None  # full 40-hex commit when pinned
    pinned: bool = False

    @model_validator(mode="after")
    def _pin_is_a_commit(self) -> HubSource:
        if self.pinned and (self.revision is None or not re.fullmatch(r"[0-9a-f]{40}", self.revision)):
            raise ValueError("pinned: true needs revision to be a full 40-hex commit sha")
        if not self.pinned and self.revision is not None:
            raise ValueError("a revision is given but pinned is false; set pinned: true")
        return self


class GPURequirement(_Frozen):
    """KAITO's GPUCountRequirement / TotalGPUMemoryRequirement / PerGPUMemoryRequirement."""

    count: int = Field(ge=1)
    total_memory_gib: float = Field(ge=0)
    per_gpu_memory_gib: float = Field(ge=0)  # 0: no per-GPU constraint (device_map=auto shards)


class InferenceLaunch(_Frozen):
    """How KAITO's image starts the inference server (v0.3.2 PresetParam fields)."""

    image_tag: str | None = None  # KAITO's public image tag; None for private (user-supplied) images
    readiness_timeout_s: int = Field(gt=0)
    base_command: str
    launcher_params: dict[str, str] = Field(default_factory=dict)  # accelerate or torchrun flags
    rdzv_params: dict[str, str] = Field(default_factory=dict)  # torchrun rendezvous flags (llama-2)
    model_run_params: dict[str, str] = Field(default_factory=dict)  # flags of inference_api.py
    world_size: int = Field(default=1, ge=1)


class MethodSupport(_Frozen):
    per_gpu_memory_gib: float = Field(gt=0)


class TuningSupport(_Frozen):
    disk: str
    gpu: GPURequirement
    base_command: str
    launcher_params: dict[str, str] = Field(default_factory=dict)
    methods: dict[TuningMethod, MethodSupport]

    @field_validator("disk")
    @classmethod
    def _disk_quantity(cls, v: str) -> str:
        return _check_quantity(v)

    @field_validator("methods")
    @classmethod
    def _some_method(cls, v: dict) -> dict:
        if not v:
            raise ValueError("tuning needs at least one method; omit the tuning block instead")
        return v


class ModelShape(_Frozen):
    """Facts about the weights and attention shape used for sizing (v0.12 catalog fields)."""

    weights_gib: float | None = Field(default=None, gt=0)  # safetensors total
    weights_estimated: bool = False  # True: parameters × bytes per parameter, not a measured file size
    token_limit: int | None = Field(default=None, gt=0)  # max_position_embeddings
    layers: int | None = Field(default=None, gt=0)
    kv_heads: int | None = Field(default=None, gt=0)
    head_dim: int | None = Field(default=None, gt=0)
    # Multi-head latent attention (DeepSeek-V3 style) caches one compressed latent per layer instead.
    kv_lora_rank: int | None = Field(default=None, gt=0)
    qk_rope_head_dim: int | None = Field(default=None, gt=0)

    @property
    def bytes_per_token(self) -> int | None:
        """KV-cache bytes per token in 16-bit, as KAITO v0.12 computes it: 2 (K and V) × layers ×
        kv_heads × head_dim × 2 bytes; with latent attention (kv_lora_rank + qk_rope_head_dim) ×
        layers × 2 bytes."""
        if self.layers is None:
            return None
        if self.kv_lora_rank is not None:
            return (self.kv_lora_rank + (self.qk_rope_head_dim or 0)) * self.layers * 2
        if self.kv_heads is None or self.head_dim is None:
            return None
        return 2 * self.layers * (2 * self.kv_heads * self.head_dim)


class Preset(_Frozen):
    name: str
    family: str
    origin: Origin
    hf: HubSource | None  # None: KAITO never published the weights (llama-2 private images)
    parameters_b: float | None = Field(gt=0)  # None: not stated anywhere we take facts from
    dtype: Literal["bfloat16", "float16", "auto"]
    access: Access
    disk: str
    gpu: GPURequirement
    distributed: bool  # True → StatefulSet + headless Service, torchrun across nodes (v0.3.2 meaning)
    runtimes: tuple[Runtime, ...] = Field(min_length=1)
    inference: InferenceLaunch
    tuning: TuningSupport | None = None
    chat_template: str | None = None  # None: the tokenizer's own template
    trust_remote_code: bool = False
    deprecated: bool = False
    model: ModelShape
    aliases: tuple[str, ...] = ()
    notes: str = ""

    @field_validator("name")
    @classmethod
    def _name_lowercase(cls, v: str) -> str:
        if v != v.lower() or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", v):
            raise ValueError("preset names are lower-case letters, digits, '.' and '-'")
        return v

    @field_validator("disk")
    @classmethod
    def _disk_quantity(cls, v: str) -> str:
        return _check_quantity(v)

    @model_validator(mode="after")
    def _consistent(self) -> Preset:
        if self.access == "private" and self.inference.image_tag is not None:
            raise ValueError("a private preset has no public image_tag (the user supplies the image)")
        if self.access != "private" and self.hf is None:
            raise ValueError("public and gated presets need an hf source")
        if self.gpu.per_gpu_memory_gib * self.gpu.count > self.gpu.total_memory_gib > 0:
            raise ValueError("per_gpu_memory_gib × count exceeds total_memory_gib")
        return self

    @property
    def tuning_methods(self) -> frozenset[str]:
        return frozenset(self.tuning.methods) if self.tuning else frozenset()

    @property
    def model_size_gib(self) -> float:
        """Weights to fit in GPU memory; the v0.3.2 total requirement when the weights are unknown."""
        return self.model.weights_gib if self.model.weights_gib is not None else self.gpu.total_memory_gib

    @property
    def hf_id(self) -> str | None:
        return self.hf.repo if self.hf else None


def _check_quantity(v: str) -> str:
    if not _QUANTITY.match(v):
        raise ValueError(f"{v!r} is not a Kubernetes quantity such as '50Gi'")
    return v


def quantity_gib(quantity: str) -> float:
    """A Kubernetes quantity string ('50Gi', '400G') in GiB."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?", quantity)
    if not m:
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
    factors = {None: 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
               "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
    return float(m.group(1)) * factors[m.group(2)] / 2**30


def format_gib(gib: float) -> str:
    """GiB as a Kubernetes-style quantity for messages: 16 → '16Gi', 27.5 → '27.5Gi'."""
    return f"{int(gib)}Gi" if math.isclose(gib, round(gib)) else f"{gib:g}Gi"


class Catalog:
    """All presets, indexed by name, alias and Hugging Face id (all case-insensitive)."""

    def __init__(self, presets: tuple[Preset, ...]):
        self.presets = presets
        self._index: dict[str, Preset] = {}
        for p in presets:
            self._add(p.name, p)
        for p in presets:
            for alias in p.aliases:
                self._add(alias, p)
        # A Hub id that no alias claims resolves to the only preset using that repo.
        by_repo: dict[str, list[Preset]] = {}
        for p in presets:
            if p.hf_id:
                by_repo.setdefault(p.hf_id.lower(), []).append(p)
        for repo, users in by_repo.items():
            if repo not in self._index and len(users) == 1:
                self._index[repo] = users[0]

    def _add(self, key: str, preset: Preset) -> None:
        k = key.lower()
        if k in self._index and self._index[k] is not preset:
            raise PresetFileError(f"preset {preset.name}: name or alias {key!r} is already used by "
                                  f"preset {self._index[k].name}")
        self._index[k] = preset

    def get(self, name: str) -> Preset | None:
        return self._index.get(name.strip().lower())


def parse_presets(text: str, source: str = "presets.yaml") -> Catalog:
    """Parse and schema-check the presets file; raise PresetFileError naming preset and field."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10× faster on this file
    try:
        doc = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise PresetFileError(f"{source}: not valid YAML: {exc}") from exc
    return build_catalog(doc, source)


def build_catalog(doc: object, source: str = "presets.yaml") -> Catalog:
    """Schema-check an already parsed presets document (pure)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("presets"), list):
        raise PresetFileError(f"{source}: expected a top-level 'presets:' list")
    stray = [k for k in doc if k != "presets" and not str(k).startswith("x-")]
    if stray:  # `x-…` keys hold YAML anchors shared by the entries
        raise PresetFileError(f"{source}: unknown top-level key(s) {', '.join(map(str, stray))}")
    presets = []
    for i, entry in enumerate(doc["presets"]):
        label = entry.get("name", f"#{i}") if isinstance(entry, dict) else f"#{i}"
        try:
            presets.append(Preset.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(entry)'}: {err['msg']}" for err in exc.errors()
            )
            raise PresetFileError(f"{source}: preset {label}: {problems}") from None
    return Catalog(tuple(presets))


@functools.cache
def load_presets() -> Catalog:
    """The packaged catalog, read and checked once per process (package data only, no other I/O)."""
    text = resources.files("kaito.catalog").joinpath("presets.yaml").read_text(encoding="utf-8")
    return parse_presets(text)


def get_preset(name: str) -> Preset | None:
    """A preset by name, alias or Hugging Face id, case-insensitively; None when unknown."""
    return load_presets().get(name)


def all_presets() -> tuple[Preset, ...]:
    return load_presets().presets
