"""Metrics and comparisons against training from scratch."""
from headstart.evaluation.metrics import classification_metrics, format_metrics

__all__ = ["classification_metrics", "format_metrics"]
