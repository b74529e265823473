"""Is the target data distributed like the training data? Two answers on feature matrices
(cached backbone features), both label-free:

- a **domain classifier**: logistic regression on standardised features (their first 256
  principal components) tells source from target rows; its cross-validated accuracy on a
  balanced sample (50% is chance) is the effect size, and the proxy A-distance 2(1 - 2 err) its
  usual summary (Ben-David et al., "Analysis of representations for domain adaptation",
  NeurIPS 2006);
- a **kernel two-sample test**: the unbiased MMD² with a Gaussian kernel (bandwidth by the median
  heuristic) and a permutation p-value (Gretton et al., "A kernel two-sample test", JMLR 2012).

Both come from one (N, N) Gram matrix of the pooled-standardised features (the only product
with the D features). The principal components keep the classifier to about a second where D is
in the thousands: on 1000 + 1000 EfficientNet-Lite0 features of Fashion-MNIST (D = 7040), all
7040 took 20 s to cross-validate and read 76.9% on a subtle shift (target features moved 15% of
the way towards those of 10-degree rotated images) where 256 components took 1.5 s and read
74.5%; both read 49% with no shift and 100% on strong shifts. Plain numpy, scipy and
scikit-learn (no torch): ``predict`` can call it on a batch without loading a training stack.
Each domain is capped at ``max_samples`` rows (a seeded subsample, stated in the report), so the
kernel and the permutations stay fast on two cores.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

STRONG = 0.75  # domain accuracy from which the shift is called large (50% is chance)
FEW = 30  # fewer samples than this in a domain: the verdict says the test has little power
# ONE_THREAD: the eigendecomposition and the logistic regression run on one BLAS thread. Their
# many small BLAS calls make OpenBLAS threads spin-wait for each other when other processes
# share the cores: on a loaded 2-core machine the 256 components of a (2000, 2000) Gram matrix
# took 20.9 s on two threads and 1.3 s on one, the classifier's 5 folds 3.5 s and 0.3 s. The
# Gram and kernel products (large matrix products) keep every thread.
MAX_KERNEL = 20000  # rows of the (N, N) float64 kernel at most (3.2 GB): pass max_samples beyond


def as_matrix(x: Any) -> np.ndarray:
    """(N, D) float64 from a numpy array, a torch tensor or nested lists."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"features must be a (N, D) matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("features contain NaN or infinite values")
    return a


def _subsample(x: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or len(x) <= n:
        return x
    return x[np.sort(rng.choice(len(x), n, replace=False))]


def pooled_standardise(x: np.ndarray) -> np.ndarray:
    """Columns scaled by the pooled mean/std (constant ones dropped): a function of the pooled
    sample only, so it leaves the permutation test exact and uses no domain label."""
    sd = x.std(0)
    keep = sd > 1e-8 * max(float(sd.max()), 1e-300)
    return (x[:, keep] - x[:, keep].mean(0)) / sd[keep]


def pooled_gram(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, N) inner products of both samples stacked (source rows first), pooled-standardised:
    the one O(N² D) product both statistics are computed from."""
    x = pooled_standardise(np.concatenate([source, target]))
    return x @ x.T


def principal_coordinates(gram: np.ndarray, k: int) -> np.ndarray:
    """(N, k) coordinates on the first k principal components, from the centred Gram matrix (its
    top eigenvectors scaled by the root eigenvalues): PCA without touching the D features."""
    from scipy.linalg import eigh
    from threadpoolctl import threadpool_limits

    n = len(gram)
    k = max(1, min(k, n - 1))
    with threadpool_limits(1):  # see ONE_THREAD
        w, u = eigh(gram, subset_by_index=[n - k, n - 1])
    return u[:, ::-1] * np.sqrt(np.maximum(w[::-1], 0.0))


def _classifier_on_gram(gram: np.ndarray, n: int, folds: int, C: float, components: int,
                        seed: int) -> tuple[float, int]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    m = len(gram) - n
    per = min(n, m)
    k = min(folds, per)
    if k < 2:
        raise ValueError(f"a domain classifier needs at least 2 samples per domain, got {n} and {m}")
    rng = np.random.default_rng(seed)
    rows = np.concatenate([np.sort(rng.choice(n, per, replace=False)), n + np.sort(rng.choice(m, per, replace=False))])
    z = principal_coordinates(gram, components)[rows]  # (2 per, k): balanced, so 0.5 is chance
    y = np.repeat([0, 1], per)
    cv = StratifiedKFold(k, shuffle=True, random_state=seed)
    with threadpool_limits(1):  # see ONE_THREAD
        return float(cross_val_score(LogisticRegression(C=C, max_iter=2000), z, y, cv=cv).mean()), k


def domain_classifier_accuracy(source: np.ndarray, target: np.ndarray, *, folds: int = 5, C: float = 0.1,
                               components: int = 256, seed: int = 0) -> tuple[float, int]:
    """Stratified k-fold accuracy of a logistic regression telling source (0) from target (1) on
    the pooled-standardised features' first ``components`` principal components (unsupervised:
    no domain label reaches the folds; it keeps the fit to seconds where D is in the thousands).
    The larger domain is subsampled to the smaller one's size, so 0.5 is chance whatever the
    sizes. Returns (accuracy, folds used)."""
    k = min(components, source.shape[1])  # the Gram matrix has rank D at most
    return _classifier_on_gram(pooled_gram(source, target), len(source), folds, C, k, seed)


def kernel_from_gram(gram: np.ndarray) -> tuple[np.ndarray, float]:
    """(N, N) Gaussian kernel exp(-|a-b|² / (2 s²)), s the median pairwise distance (returned)."""
    sq = np.diag(gram)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)  # (N, N) squared distances
    off = d2[np.triu_indices(len(gram), 1)]
    med = float(np.median(off[off > 0])) if (off > 0).any() else 1.0
    return np.exp(-d2 / (2.0 * med)), float(np.sqrt(med))


def gaussian_kernel(x: np.ndarray) -> tuple[np.ndarray, float]:
    """The Gaussian kernel of the rows of ``x`` (as given) and its median-heuristic bandwidth."""
    return kernel_from_gram(x @ x.T)


def _mmd2_unbiased(k: np.ndarray, members: np.ndarray, n: int) -> np.ndarray:
    """Unbiased MMD² for each column of ``members`` ((N, B) 0/1: 1 = first sample, n ones per
    column), all in one matrix product: s'Ks, s'K1 and 1'K1 give the three block sums."""
    m = len(k) - n
    row = k.sum(1)  # (N,)
    total = float(row.sum())
    ks = k @ members  # (N, B)
    xx = (members * ks).sum(0)  # sum over the first sample's block
    xy = members.T @ row - xx  # cross block
    yy = total - 2.0 * (members.T @ row) + xx
    diag = np.diag(k)
    dx = members.T @ diag  # the diagonal (1 for a Gaussian kernel) is left out of the unbiased sums
    dy = float(diag.sum()) - dx
    return (xx - dx) / (n * (n - 1)) + (yy - dy) / (m * (m - 1)) - 2.0 * xy / (n * m)


def _check_sizes(n: int, m: int) -> None:
    if n < 2 or m < 2:
        raise ValueError(f"the shift statistics need at least 2 samples per domain, got {n} and {m}")
    if n + m > MAX_KERNEL:
        raise ValueError(f"{n} + {m} samples: the ({n + m}, {n + m}) kernel would need "
                         f"{8 * (n + m) ** 2 / 1e9:.1f} GB; subsample (max_samples) to at most {MAX_KERNEL} in all")


def _mmd_on_gram(gram: np.ndarray, n: int, permutations: int, seed: int,
                 chunk: int = 100) -> tuple[float, float, float]:
    k, bandwidth = kernel_from_gram(gram)
    total = len(k)
    first = np.zeros((total, 1))
    first[:n] = 1.0
    observed = float(_mmd2_unbiased(k, first, n)[0])
    rng = np.random.default_rng(seed)
    count = 0
    for start in range(0, permutations, chunk):
        b = min(chunk, permutations - start)
        members = np.zeros((total, b))
        order = np.argsort(rng.random((total, b)), axis=0)[:n]  # (n, b): who is "source" in each
        members[order, np.arange(b)[None, :]] = 1.0
        count += int((_mmd2_unbiased(k, members, n) >= observed - 1e-12).sum())
    return observed, (1 + count) / (1 + permutations), bandwidth


def mmd_permutation_test(source: np.ndarray, target: np.ndarray, *, permutations: int = 1000,
                         seed: int = 0) -> tuple[float, float, float]:
    """(MMD², p-value, bandwidth) on the pooled-standardised features. The p-value is
    (1 + #{permuted >= observed}) / (1 + B): a valid p-value, never 0, at least 1 / (1 + B)."""
    _check_sizes(len(source), len(target))
    return _mmd_on_gram(pooled_gram(source, target), len(source), permutations, seed)


def p_text(p: float) -> str:
    """``p < 0.001``, ``p = 0.004``, ``p = 0.43``: as the verdict writes it."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


@dataclass
class ShiftReport:
    """What ``shift_test`` found: the numbers, the sizes actually used, and a plain verdict."""

    domain_accuracy: float  # cross-validated, on a balanced sample: 0.5 is chance
    proxy_a_distance: float  # 2 (1 - 2 err), clipped at 0: 0 = indistinguishable, 2 = disjoint
    mmd2: float  # unbiased MMD² on the pooled-standardised features
    p_value: float  # permutation p-value of MMD²
    bandwidth: float  # the Gaussian kernel's s (median pairwise distance)
    n_source: int  # rows used after the cap
    n_target: int
    n_source_total: int  # rows given
    n_target_total: int
    num_features: int
    permutations: int
    folds: int
    components: int = 256  # principal components the domain classifier sees (at most)
    alpha: float = 0.05
    seed: int = 0
    seconds: float = 0.0
    backbone: str | None = None
    modality: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def shifted(self) -> bool:
        """The two-sample test rejects "same distribution" at level ``alpha``."""
        return self.p_value < self.alpha

    @property
    def verdict(self) -> str:
        acc, p = f"{100 * self.domain_accuracy:.0f}%", p_text(self.p_value)
        few = min(self.n_source, self.n_target) < FEW
        if self.shifted and self.domain_accuracy >= STRONG:
            return (f"the target differs from the training data: a classifier tells them apart {acc} of the time, "
                    f"{p}; expect lower accuracy there; consider --adapt")
        if self.shifted:
            return (f"a mild shift: the target differs from the training data ({p}), but a classifier tells them "
                    f"apart only {acc} of the time (50% is chance); accuracy there may drop a little")
        tail = (f"; with only {min(self.n_source, self.n_target)} samples in a domain the test sees only large "
                "shifts: give more data to be sure") if few else ""
        return (f"no detectable shift: a classifier tells them apart {acc} of the time (50% is chance), {p}{tail}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shifted": self.shifted, "verdict": self.verdict}

    def format(self) -> str:
        def size(used: int, total: int) -> str:
            return f"{used}" + (f" (of {total})" if used < total else "")

        what = f"{self.modality} " if self.modality else ""
        by = f", backbone {self.backbone}" if self.backbone else ""
        floor = self.p_value * (1 + self.permutations) < 1.5  # no permutation reached the observed MMD²
        sizes = (f"source {size(self.n_source, self.n_source_total)} vs "
                 f"target {size(self.n_target, self.n_target_total)}")
        classifier = (f"{100 * self.domain_accuracy:.1f}% accuracy ({self.folds}-fold, balanced, "
                      f"{self.components} principal components; 50% is chance), "
                      f"proxy A-distance {self.proxy_a_distance:.2f} (0 to 2)")
        test = (f"{self.mmd2:.4g} (Gaussian kernel, median-heuristic bandwidth {self.bandwidth:.3g}), "
                f"{p_text(self.p_value)} ({self.permutations} permutations"
                + ("; none reached it: the smallest p they can give)" if floor else ")"))
        lines = [f"shift: {sizes} {what}samples, {self.num_features} features{by}",
                 f"domain classifier: {classifier}", f"MMD²: {test}"]
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"verdict: {self.verdict}")
        return "\n".join(lines)


def shift_test(source: Any, target: Any, *, permutations: int = 1000, max_samples: int | None = 1000,
               folds: int = 5, components: int = 256, alpha: float = 0.05, seed: int = 0) -> ShiftReport:
    """Compare two (N, D) feature matrices (numpy or torch): the domain classifier (on
    ``components`` principal components) and the MMD permutation test, on at most
    ``max_samples`` rows of each (seeded subsample)."""
    t0 = time.perf_counter()
    xs, xt = as_matrix(source), as_matrix(target)
    if xs.shape[1] != xt.shape[1]:
        raise ValueError(f"source has {xs.shape[1]} features but target {xt.shape[1]}")
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    rng = np.random.default_rng(seed)
    s, t = _subsample(xs, max_samples, rng), _subsample(xt, max_samples, rng)
    notes = [f"{name} subsampled to {len(a)} of {len(b)} rows (seed {seed}; max_samples={max_samples})"
             for name, a, b in (("source", s, xs), ("target", t, xt)) if len(a) < len(b)]
    _check_sizes(len(s), len(t))
    gram = pooled_gram(s, t)  # (N, N), shared by both statistics
    used = max(1, min(components, len(s) + len(t) - 1, xs.shape[1]))  # the Gram's rank bounds it
    acc, k = _classifier_on_gram(gram, len(s), folds, 0.1, used, seed)
    mmd2, p, bw = _mmd_on_gram(gram, len(s), permutations, seed)
    return ShiftReport(domain_accuracy=acc, proxy_a_distance=max(0.0, 2.0 * (1.0 - 2.0 * (1.0 - acc))),
                       mmd2=mmd2, p_value=p, bandwidth=bw, n_source=len(s), n_target=len(t),
                       n_source_total=len(xs), n_target_total=len(xt), num_features=xs.shape[1],
                       permutations=permutations, folds=k, components=used, alpha=alpha, seed=seed,
                       seconds=time.perf_counter() - t0, notes=notes)
