"""The PCA plot of both domains is written in the format its suffix names."""
import numpy as np

from headstart.adaptation.plot import pca_2d, plot_domains


def test_plot_is_written_as_png_and_svg(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) + 2
    png = plot_domains(a, b, tmp_path / "p.png", title="t")
    svg = plot_domains(a, b, tmp_path / "p.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg.read_bytes()[:500]


def test_first_component_separates_a_mean_shift():
    rng = np.random.default_rng(0)
    zs, zt, ratio = pca_2d(rng.normal(size=(50, 5)), rng.normal(size=(50, 5)) + 3)
    assert zs.shape == (50, 2) and abs(zs[:, 0].mean() - zt[:, 0].mean()) > 2 and ratio[0] > 0.5
