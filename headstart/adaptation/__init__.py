"""Domain shift between the training data and the data a model meets. ``shift`` holds the
statistics on feature matrices (numpy and scikit-learn only); ``detect`` goes from data to a
report through a backbone and the feature cache; ``plot`` draws both domains."""
from __future__ import annotations

from headstart.adaptation.shift import ShiftReport, shift_test


def __getattr__(name: str):  # PEP 562: reading data and running a backbone needs torch; the statistics do not
    if name == "detect_shift":
        from headstart.adaptation.detect import detect_shift

        return detect_shift
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ShiftReport", "detect_shift", "shift_test"]
