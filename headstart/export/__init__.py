"""Saved model bundles."""
from headstart.export.bundle import load_bundle, save_bundle

__all__ = ["load_bundle", "save_bundle"]
