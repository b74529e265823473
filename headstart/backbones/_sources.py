"""The backbone-source registry object itself (filled in by the package ``__init__``), in a
module of its own so a source can look up another without importing the package."""
from __future__ import annotations

from typing import Callable

from headstart._registry import Registry
from headstart.backbones._base import Backbone

SOURCES: Registry[Callable[..., Backbone]] = Registry("backbone source")
