"""Which image a Workspace's pods run, and how to recognise our runtime image.

Public presets run our one runtime image, `<registry>/kaito-runtime:<tag>`, with the model chosen by
arguments (weights come from the Hub at start-up), instead of KAITO's one image per model. The
registry is operator configuration (KAITO's `PRESET_REGISTRY_NAME`); the tag is configuration too,
falling back to the preset's KAITO image tag, then to this package's version. Private presets run
the user's `presetOptions.image`, as in KAITO.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaito import __version__
from kaito.catalog.presets import Preset

# Where our runtime image is published: the one default for `kaito render`, `kaito operator
# --runtime-image-registry` and the chart's `runtimeImage.registry` (a test holds them equal).
# KAITO's PRESET_REGISTRY_NAME (mcr.microsoft.com/aks/kaito) holds KAITO's per-model images, not ours.
DEFAULT_REGISTRY = "ghcr.io/kaito-project"
RUNTIME_REPOSITORY = "kaito-runtime"


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    registry: str = DEFAULT_REGISTRY
    repository: str = RUNTIME_REPOSITORY
    tag: str | None = None  # None: the preset's image tag, else the kaito version


def build_runtime_image(settings: ImageSettings, preset: Preset | None = None) -> str:
    tag = settings.tag or (preset.inference.image_tag if preset is not None else None) or __version__
    return f"{settings.registry.rstrip('/')}/{settings.repository}:{tag}"


def is_runtime_image(image: str, settings: ImageSettings | None = None) -> bool:
    """True for an image of our runtime repository (any registry and tag), e.g. for a local runner."""
    repository = (settings or ImageSettings()).repository
    name = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return name == repository
