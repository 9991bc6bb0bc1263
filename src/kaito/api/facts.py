"""What validation needs to know about models and GPUs, as a protocol.

`kaito.api` may not import the catalog, yet KAITO's admission rules check a preset's existence,
its image access mode and whether it fits the instance type. The rules ask these questions
through `ModelFacts`; `kaito.catalog.facts.CatalogFacts` answers them (tests may pass a fake).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from kaito.api.errors import FieldError

Access = Literal["public", "private", "gated"]


@dataclass(frozen=True)
class PresetFacts:
    """The facts about one model that the admission rules use."""

    name: str
    access: Access = "public"  # "private": KAITO's llama-2 presets, image must be supplied
    tuning_methods: frozenset[str] = field(default_factory=frozenset)  # {"lora", "qlora"}
    deprecated: bool = False
    known_size: bool = True  # False for an `org/model` id whose size nobody knows here


class ModelFacts(Protocol):
    def preset(self, name: str) -> PresetFacts | None:
        """Facts for a preset name, a Hugging Face `org/model` id or a local model dir; None if unknown."""
        ...

    def check_fit(self, instance_type: str, count: int, preset_name: str | None) -> list[FieldError]:
        """KAITO's SKU rules (§2.1 rules 3 and 4) for an inference workspace; paths start at `resource`."""
        ...
