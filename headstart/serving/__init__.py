"""HTTP serving of bundles: each loaded once, requests micro-batched across clients, bad input
answered 4xx (never 5xx), a web page at ``/``. ``headstart serve BUNDLE...`` runs it."""
from __future__ import annotations

from typing import Any

from headstart.serving.limits import Limits

__all__ = ["Limits", "create_app"]


def __getattr__(name: str) -> Any:
    """``create_app`` imported on first use (PEP 562): the supervisor of ``--workers N`` starts
    without torch, only its worker processes load the models."""
    if name == "create_app":
        from headstart.serving.app import create_app
        return create_app
    raise AttributeError(f"module 'headstart.serving' has no attribute {name!r}")
