"""Losses as objects returning {"loss": ...}."""
from headstart.tasks.classification import ClassificationTask

__all__ = ["ClassificationTask"]
