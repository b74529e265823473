"""headstart: adapt pretrained image and text models to small labeled datasets, and prove with
numbers that it beat training from scratch."""
from __future__ import annotations

from typing import Any

from headstart._version import __version__

__all__ = ["Headstart", "Planner", "__version__", "build_backbone", "fit", "load"]


def __getattr__(name: str) -> Any:
    """The public API, imported on first use (PEP 562): ``headstart rank`` and other commands
    that need only part of the library start without loading all of it."""
    if name in ("Headstart", "fit", "load"):
        from headstart import api
        return getattr(api, name)
    if name == "Planner":
        from headstart.selection.planner import Planner
        return Planner
    if name == "build_backbone":
        from headstart.backbones import build_backbone
        return build_backbone
    raise AttributeError(f"module 'headstart' has no attribute {name!r}")
