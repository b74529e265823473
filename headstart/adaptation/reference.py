"""Does a batch of inputs look like the data a model was fitted for? ``fit`` keeps a compact
reference of that data's pooled features in the bundle; ``predict`` compares the features it
computes anyway (no second backbone pass) with it, and warns when they differ.

The reference: the per-dimension mean and standard deviation of up to ``MAX_ROWS`` fitted-for
inputs' features, and those rows standardised and hashed down to ``WIDTH`` dimensions (feature
hashing, Weinberger et al. 2009: each input dimension adds, with a sign, into one of ``WIDTH``
buckets; bucket and sign come from integer arithmetic, so every machine and numpy version
projects alike). About ``8 D + 4 * 256 * WIDTH`` bytes: 0.3 MB for D = 7040, whatever the data.

Per input, its **OOD score**: the distance to its nearest reference row, divided by the median
of the reference rows' own nearest-neighbour distances (leave one out): about 1 for inputs like
the fitted-for data (Sun et al., "Out-of-distribution detection with deep nearest neighbors",
ICML 2022, on features). Per batch of at least ``MIN_BATCH`` inputs, two answers: the MMD
permutation test (``shift.mmd_permutation_test``) against the reference rows, and how much
farther from the reference the batch lies than the reference rows lie from each other: the
probability that a batch input's nearest-reference distance exceeds a reference row's own
(the Mann-Whitney AUC; 0.5 for fitted-for data). The warning needs both: the test says the
difference is real, the AUC that it is large: a batch drawn from one dense part of the data
(one class, say) differs but is not farther out. Measured on examples/fashion_mnist with
EfficientNet-Lite0 (7040 features, 200 training images as the reference): the 200 test images
read AUC 0.46 (p = 0.79), the same images inverted 0.78 (p = 0.002); blocks of 20 test images
of one class 0.15 to 0.80 (bags, the most varied class, the highest), inverted 0.60 to 0.95. The
nearest-neighbour share beyond the reference's 95th percentile separated them less (4.5% vs 15%).
Numpy only: it runs where ``predict`` runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from headstart.adaptation.shift import as_matrix, mmd_permutation_test, p_text

MAX_ROWS = 256  # reference rows kept in the bundle
WIDTH = 256  # hashed feature width (features with at most this many dimensions are kept whole)
MIN_ROWS = 20  # fewer reference rows: no batch check (its quantiles would mean little)
MIN_BATCH = 30  # fewer inputs: no batch check
MAX_BATCH = 400  # batch rows the two-sample test sees (seeded subsample)
PERMUTATIONS = 500
ALPHA = 0.01
FARTHER = 0.7  # the warning needs AUC >= this (0.5: as far out as the fitted-for data; see above)
FILE = "reference.safetensors"


def _hash_buckets(d: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(bucket, sign) per input dimension: splitmix64 of the dimension's index."""
    z = np.arange(d, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(width)).astype(np.int64), np.where((z >> np.uint64(40)) & np.uint64(1), 1.0, -1.0)


def _nearest(a: np.ndarray, b: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """(len(a),) Euclidean distance of each row of ``a`` to its nearest row of ``b``."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    if exclude_self:
        np.fill_diagonal(d2, np.inf)
    return np.sqrt(np.maximum(d2.min(1), 0.0))


@dataclass
class BatchCheck:
    """What ``FeatureReference.check`` found on one batch."""

    n: int  # inputs in the batch
    n_used: int  # rows the test used (at most MAX_BATCH)
    p_value: float
    mmd2: float
    farther: float  # P(a batch input's nearest-reference distance > a reference row's own): 0.5 in distribution
    source: str  # what the reference holds ("training data", "unlabeled target data")

    @property
    def shifted(self) -> bool:
        return self.p_value < ALPHA and self.farther >= FARTHER

    def message(self) -> str:
        return (f"these {self.n} inputs differ from the {self.source} this model was fitted for: they lie farther "
                f"from it than its own examples lie from each other ({100 * self.farther:.0f}% of pairs; about 50% "
                f"for inputs like it), two-sample test {p_text(self.p_value)}; predictions may be less accurate; "
                "see `headstart shift` (and `--adapt`)")

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "n_used": self.n_used, "p_value": self.p_value, "mmd2": self.mmd2,
                "farther": self.farther, "shifted": self.shifted, "source": self.source}


class FeatureReference:
    """The fitted-for data's features in small: ``mean``/``std`` (D,) and ``rows`` (n, WIDTH),
    standardised and hashed. Build with ``from_features``; ``project`` maps new (N, D)
    features to the rows' space, ``scores`` gives per-input OOD scores, ``check`` a batch verdict."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, rows: np.ndarray, source: str = "training data") -> None:
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        self.rows, self.source = np.asarray(rows, np.float64), source
        d = len(self.mean)
        self._hash = None
        if d > WIDTH:  # (D, WIDTH) sparse: one signed 1 per input dimension
            from scipy.sparse import csr_matrix

            bucket, sign = _hash_buckets(d, WIDTH)
            self._hash = csr_matrix((sign, (np.arange(d), bucket)), shape=(d, WIDTH))
        self.loo = _nearest(self.rows, self.rows, exclude_self=True) if len(self.rows) > 1 else np.ones(1)
        self.scale = float(np.median(self.loo)) or 1.0

    @classmethod
    def from_features(cls, feats: Any, *, source: str = "training data", seed: int = 0) -> "FeatureReference":
        """From (N, D) features of fitted-for inputs: statistics of all N, at most MAX_ROWS rows kept."""
        x = as_matrix(feats)
        sd = x.std(0)
        positive = sd[sd > 0]
        floor = 0.1 * float(np.median(positive)) if len(positive) else 1.0  # a dimension constant in the sample
        ref = cls(x.mean(0), np.maximum(sd, floor), np.zeros((0, 1)), source)
        keep = np.sort(np.random.default_rng(seed).choice(len(x), min(len(x), MAX_ROWS), replace=False))
        return cls(ref.mean, ref.std, ref.project(x[keep]), source)

    @property
    def num_features(self) -> int:
        return len(self.mean)

    def project(self, feats: Any) -> np.ndarray:
        """(N, D) features -> (N, min(D, WIDTH)) standardised, hashed rows."""
        x = np.asarray(feats.detach().cpu().numpy() if hasattr(feats, "detach") else feats, np.float64)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"features of shape {x.shape}, but the reference has {self.num_features} dimensions")
        # a non-finite feature (a broken input) must not stop predict: it counts as the typical value
        z = np.nan_to_num((x - self.mean) / self.std, nan=0.0, posinf=0.0, neginf=0.0)
        return z if self._hash is None else np.asarray((self._hash.T @ z.T).T)  # (N, WIDTH)

    def scores(self, projected: np.ndarray) -> np.ndarray:
        """(N,) nearest-reference distance over the reference's median one: about 1 in distribution."""
        return _nearest(np.asarray(projected, np.float64), self.rows) / self.scale

    def check(self, projected: np.ndarray, n: int | None = None, seed: int = 0) -> BatchCheck | None:
        """The batch verdict on projected rows (``n``: the batch's size, if these are a sample of
        it); None when the batch or the reference is too small to say."""
        p = np.asarray(projected, np.float64)
        if len(p) < MIN_BATCH or len(self.rows) < MIN_ROWS:
            return None
        if len(p) > MAX_BATCH:
            p = p[np.sort(np.random.default_rng(seed).choice(len(p), MAX_BATCH, replace=False))]
        mmd2, pv, _ = mmd_permutation_test(self.rows, p, permutations=PERMUTATIONS, seed=seed)
        d, own = _nearest(p, self.rows)[:, None], self.loo[None, :]
        farther = float(np.mean(d > own) + 0.5 * np.mean(d == own))  # the Mann-Whitney AUC
        return BatchCheck(n=n or len(projected), n_used=len(p), p_value=pv, mmd2=mmd2, farther=farther,
                          source=self.source)

    def tensors(self) -> dict[str, np.ndarray]:
        """What the bundle stores (float32)."""
        return {k: np.ascontiguousarray(v, np.float32) for k, v in
                (("mean", self.mean), ("std", self.std), ("rows", self.rows))}

    def meta(self) -> dict[str, Any]:
        return {"file": FILE, "rows": len(self.rows), "width": self.rows.shape[1], "num_features": self.num_features,
                "source": self.source}

    @classmethod
    def from_tensors(cls, t: dict[str, Any], meta: dict[str, Any]) -> "FeatureReference":
        return cls(as_matrix(t["mean"][None])[0], as_matrix(t["std"][None])[0], as_matrix(t["rows"]),
                   meta.get("source", "training data"))


class InputShiftWarning(UserWarning):
    """``predict`` on a batch that differs from the data the model was fitted for."""


class Reservoir:
    """A uniform sample of at most ``k`` rows of a stream (Vitter's algorithm R), seeded: what a
    streamed ``predict`` checks, in constant memory."""

    def __init__(self, k: int = MAX_BATCH, seed: int = 0) -> None:
        self.k, self.seen, self.rng = k, 0, np.random.default_rng(seed)
        self.kept: list[np.ndarray] = []

    def add(self, rows: np.ndarray) -> None:
        for row in np.asarray(rows):
            if len(self.kept) < self.k:
                self.kept.append(row)
            else:
                j = int(self.rng.integers(0, self.seen + 1))
                if j < self.k:
                    self.kept[j] = row
            self.seen += 1

    @property
    def rows(self) -> np.ndarray:
        return np.stack(self.kept) if self.kept else np.zeros((0, 1))
