"""What admission needs to know about models and GPUs, as a protocol.

`kaito.api` may not import the catalog, yet KAITO's admission rules check a preset's existence,
its access, its size against the instance type and its context window. The rules ask these
questions through `ModelFacts`; `kaito.catalog.facts.build_catalog_facts()` answers them (tests may
pass a fake).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from kaito.api.errors import FieldError

Access = Literal["public", "private", "gated"]
DEFAULT_RUNTIMES = ("transformers", "vllm")


@dataclass(frozen=True)
class PresetFacts:
    """The facts about one model that the admission rules use."""

    name: str
    access: Access = "public"  # "private": the user's image carries the weights; "gated": HF token needed
    tuning_methods: frozenset[str] = field(default_factory=frozenset)  # {"lora", "qlora"}
    deprecated: bool = False
    known_size: bool = True  # False for an `org/model` id whose size nobody knows here
    runtimes: tuple[str, ...] = DEFAULT_RUNTIMES  # the first is the default engine
    weights_gib: float | None = None  # what the weights take in GPU memory; None: unknown
    token_limit: int | None = None  # the model's longest context (max_position_embeddings)

    @property
    def downloads_at_runtime(self) -> bool:
        """Weights come from the Hugging Face Hub when the pod starts (all but private presets)."""
        return self.access != "private"


@dataclass(frozen=True)
class GpuFacts:
    """One node of an instance type (or a BYO node): its GPUs."""

    instance_type: str
    gpu_count: int
    gpu_memory_gib: float  # all GPUs of the node together
    gpu_model: str = ""


class ModelFacts(Protocol):
    def preset(self, name: str) -> PresetFacts | None:
        """Facts for a preset name, a Hugging Face `org/model` id or a local model dir; None if unknown."""
        ...

    def check_fit(self, instance_type: str, count: int, preset_name: str | None) -> list[FieldError]:
        """KAITO v0.3.2's SKU rules (§2.1 rules 3 and 4); paths start at `resource`."""
        ...

    def instance_type(self, name: str) -> GpuFacts | None:
        """The GPUs of one node of `name`; None when the SKU table does not list it."""
        ...

    def check_instance_type(self, name: str) -> list[FieldError]:
        """`[]` when `name` is a SKU this cloud accepts, else the error on `resource.instanceType`."""
        ...

    def vllm_options(self) -> frozenset[str] | None:
        """The `--option` names of the vLLM the pods run (`inference.config` keys must name one);
        None: not known here, the keys are not checked."""
        ...
