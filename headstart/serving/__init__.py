"""HTTP serving of bundles: each loaded once, requests micro-batched across clients, bad input
answered 4xx (never 5xx), a web page at ``/``. ``headstart serve BUNDLE...`` runs it."""
from headstart.serving.app import create_app
from headstart.serving.limits import Limits

__all__ = ["Limits", "create_app"]
