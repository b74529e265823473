"""Metrics and comparisons against training from scratch."""
from headstart.evaluation.compare import compare_with_scratch, format_comparison
from headstart.evaluation.metrics import classification_metrics, format_metrics

__all__ = ["classification_metrics", "compare_with_scratch", "format_comparison", "format_metrics"]
