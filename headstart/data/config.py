"""What a model needs from its inputs — image size, mean/std, interpolation, max tokens,
pooling — as data: the data config travels with the weights (torchvision's rule: never type
the mean/std twice), and data/ reads it without knowing any backbone."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

IMAGE = "image"
TEXT = "text"
AUDIO = "audio"
TIMESERIES = "timeseries"


@dataclass
class PretrainedCfg:
    """What a backbone needs from its inputs. Image fields or text fields apply by modality."""

    modality: str
    source: str = ""
    license: str = "unknown"
    # image
    input_size: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    fixed_input_size: bool = False  # e.g. ViTs: position embeddings fix the input size
    # multi-scale features: module names whose outputs are pooled and concatenated (empty: the
    # final pooled features); grid > 1 adds a grid x grid average pooling per tapped module
    feature_taps: tuple[str, ...] = ()
    feature_grid: int = 1
    # text
    max_length: int = 128
    pooling: str = "mean"  # "mean" or "cls"; audio: "mean" (over the clip's frames) or "mean_all"
    # audio: waveforms are resampled to the checkpoint's rate, mono, cut to at most max_seconds
    sampling_rate: int = 16000
    max_seconds: float = 30.0
    # time series: the channel count the first layer reads (set from the data, see adapt_to)
    channels: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"], d["feature_taps"] = list(self.mean), list(self.std), list(self.feature_taps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PretrainedCfg":
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("mean", "std"):
            if k in kw:
                kw[k] = tuple(float(v) for v in kw[k])
        if "feature_taps" in kw:
            kw["feature_taps"] = tuple(kw["feature_taps"])
        return cls(**kw)

    def preprocessing_dict(self) -> dict[str, Any]:
        """The fields that change what the backbone sees (the feature-cache key uses them)."""
        if self.modality == IMAGE:
            keys = ("modality", "input_size", "mean", "std", "interpolation", "feature_taps", "feature_grid")
        elif self.modality == AUDIO:
            keys = ("modality", "sampling_rate", "max_seconds", "pooling")
        elif self.modality == TIMESERIES:
            keys = ("modality", "channels", "pooling")
        else:
            keys = ("modality", "max_length", "pooling")
        d = self.to_dict()
        return {k: d[k] for k in keys}
