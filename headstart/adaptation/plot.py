"""The two domains in the plane of the pooled features' first two principal components: what the
shift statistics measure, as a picture (written to PNG or SVG)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from headstart.adaptation.shift import as_matrix, pooled_standardise


def pca_2d(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both domains projected on the pooled sample's first two principal components (after the
    same pooled standardisation as the two-sample test); also the explained-variance ratios."""
    x = pooled_standardise(np.concatenate([source, target]))  # (N, D'), centred
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:2]
    while len(comps) < 2:  # a single usable feature: the second axis is flat
        comps = np.concatenate([comps, np.zeros((1, x.shape[1]))])
    z = x @ comps.T  # (N, 2)
    var = s ** 2
    ratio = var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)
    return z[: len(source)], z[len(source):], np.pad(ratio, (0, 2 - len(ratio)))


def project_domains(source: Any, target: Any, *, max_points: int = 2000, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most ``max_points`` rows of each domain (seeded), projected by ``pca_2d``: what the
    plot shows, small enough to keep (a fitted model's adaptation summary holds two of them)."""
    xs, xt = as_matrix(source), as_matrix(target)
    rng = np.random.default_rng(seed)
    xs, xt = (a[np.sort(rng.choice(len(a), max_points, replace=False))] if len(a) > max_points else a
              for a in (xs, xt))
    return pca_2d(xs, xt)


def plot_projection(zs: np.ndarray, zt: np.ndarray, ratio: np.ndarray, path: str | Path, *, title: str = "",
                    labels: tuple[str, str] = ("source", "target")) -> Path:
    """Scatter two projected domains (``project_domains``) and save the figure to ``path`` (the
    format from its suffix: .png or .svg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 5.0))
    for z, name, colour in ((zs, labels[0], "tab:blue"), (zt, labels[1], "tab:orange")):
        ax.scatter(z[:, 0], z[:, 1], s=8, alpha=0.5, c=colour, label=f"{name} ({len(z)})", linewidths=0)
    ax.set_xlabel(f"PC 1 ({100 * ratio[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * ratio[1]:.0f}% of variance)")
    ax.legend(loc="best", markerscale=2)
    if title:
        ax.set_title(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_domains(source: Any, target: Any, path: str | Path, *, title: str = "",
                 labels: tuple[str, str] = ("source", "target"), max_points: int = 2000, seed: int = 0) -> Path:
    """Scatter both domains (at most ``max_points`` each, seeded) and save the figure to ``path``
    (the format from its suffix: .png or .svg)."""
    zs, zt, ratio = project_domains(source, target, max_points=max_points, seed=seed)
    return plot_projection(zs, zt, ratio, path, title=title, labels=labels)
