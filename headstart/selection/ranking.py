"""The result of ranking backbones: one row per candidate and the pick with its reason. Plain
data (no torch), so the rank memo can print a stored ranking without loading any model."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RankRow:
    backbone: str
    scores: dict[str, float | None] = field(default_factory=dict)
    feature_seconds: float = 0.0
    score_seconds: float = 0.0
    reused: bool = False  # every feature row came from the cache
    num_features: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Ranking:
    rows: list[RankRow]  # best first by ``by``; failed candidates last
    by: str
    n_samples: int
    n_classes: int
    pick: str | None
    reason: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Ranking":
        return cls([RankRow(**r) for r in d["rows"]], d["by"], d["n_samples"], d["n_classes"], d["pick"], d["reason"])

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "n_samples": self.n_samples, "n_classes": self.n_classes, "pick": self.pick,
                "reason": self.reason, "rows": [r.to_dict() for r in self.rows]}

    def format(self) -> str:
        names = sorted({k for r in self.rows for k in r.scores})
        names = [self.by] + [n for n in names if n != self.by] if self.by in names else names
        header = ["#", "backbone", *names, "features", "dim"]
        lines = [header]
        for i, r in enumerate(self.rows, 1):
            if r.error:
                lines.append([str(i), r.backbone, f"failed: {r.error}"])
                continue
            cells = ["n/a" if r.scores.get(n) is None else f"{r.scores[n]:.4f}" for n in names]
            secs = f"{r.feature_seconds:.1f} s" + (" (cache)" if r.reused else "")
            lines.append([str(i), r.backbone, *cells, secs, str(r.num_features)])
        widths = [max(len(row[j]) for row in lines if j < len(row)) for j in range(len(header))]
        text = ["  ".join(c.ljust(widths[j]) for j, c in enumerate(row)) for row in lines]
        text.append(f"ranked by {self.by} on {self.n_samples} examples, {self.n_classes} classes "
                    "(higher is better for every score)")
        text.append(f"pick: {self.pick} — {self.reason}" if self.pick else f"no pick: {self.reason}")
        return "\n".join(text)
