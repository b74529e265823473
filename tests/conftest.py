"""Shared fixtures: small generated datasets that a tiny model can learn in seconds."""
from __future__ import annotations

import csv
import random
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headstart.backbones import SOURCES
from headstart.backbones.tiny import TinyCNN

COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}
WORDS = {"pos": ["great", "wonderful", "superb", "moving", "brilliant"],
         "neg": ["awful", "boring", "dreadful", "tedious", "clumsy"]}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's ~/.cache from tests."""
    monkeypatch.setenv("HEADSTART_CACHE", str(tmp_path_factory.mktemp("hs-cache")))


def make_image(colour: tuple[int, int, int], seed: int, size: int = 24) -> Image.Image:
    rng = np.random.RandomState(seed)
    arr = np.clip(np.array(colour)[None, None, :] + rng.randint(-40, 40, (size, size, 3)), 0, 255)
    return Image.fromarray(arr.astype(np.uint8))


# review vocabulary of the generated text CSVs (tags fun/sad/long set by their words)
REVIEW_WORDS = {"fun": ["hilarious", "witty", "funny"], "sad": ["tragic", "tearful", "grim"],
         "long": ["sprawling", "epic", "lengthy"]}
REVIEW_FILLER = ["the", "film", "was", "and", "a", "story", "with", "cast"]


def write_image_folder(root: Path, per_class: int, seed: int = 0) -> Path:
    for c, rgb in COLOURS.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(rgb, seed * 1000 + i).save(root / c / f"{c}_{i}.png")
    return root


@pytest.fixture
def image_data(tmp_path) -> tuple[Path, Path]:
    """(train folder, test folder): 3 colour classes, 12 / 6 images each."""
    return write_image_folder(tmp_path / "train", 12, 0), write_image_folder(tmp_path / "test", 6, 1)


def write_text_csv(path: Path, n: int, seed: int) -> Path:
    rnd = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            lab = "pos" if i % 2 == 0 else "neg"
            w.writerow([f"the film was {rnd.choice(WORDS[lab])} and {rnd.choice(WORDS[lab])}", lab])
    return path


@pytest.fixture
def text_data(tmp_path) -> tuple[Path, Path]:
    return write_text_csv(tmp_path / "train.csv", 40, 0), write_text_csv(tmp_path / "test.csv", 20, 1)


class CountingCNN(TinyCNN):
    """TinyCNN that counts the inputs its forward_features sees (class-wide, reset by tests)."""

    seen = 0

    def forward_features(self, x):
        CountingCNN.seen += len(x)
        return super().forward_features(x)


if "counting" not in SOURCES:  # a test-only backbone source, through the public registry
    SOURCES.register("counting")(lambda name, pretrained=True: CountingCNN(spec=f"counting:{name}"))


def _fixed_bert(name, pretrained=True):
    """tiny:bert with the same weights at every build, as pretrained weights are (zero-shot builds its own)."""
    import torch

    from headstart.backbones.tiny import tiny_bert

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return tiny_bert(spec=f"fixed:{name}")


if "fixed" not in SOURCES:  # a test-only backbone source, through the public registry
    SOURCES.register("fixed")(_fixed_bert)


@pytest.fixture
def counting():
    CountingCNN.seen = 0
    return CountingCNN


def fit_tiny_bundles(tmp: Path, per_class: int = 12, steps: int = 8) -> dict[str, Path]:
    """Bundles of two tiny fitted models under ``tmp``: {"img": tiny:cnn on colour folders,
    "txt": tiny:bert on reviews}."""
    from headstart.api import Headstart

    out = {}
    for name, spec, data in (("img", "tiny:cnn", write_image_folder(tmp / "train", per_class, 0)),
                             ("txt", "tiny:bert", write_text_csv(tmp / "train.csv", per_class * 10 // 3, 0))):
        Headstart(backbone=spec, strategy="fine_tuning", strategy_params={"steps": steps}, verbose=False,
                  run={"out": tmp / name}, runtime={"cache_dir": tmp / "cache"}).fit(data)
        out[name] = tmp / name
    return out


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory) -> dict[str, Path]:
    """The two tiny bundles, shared by the serving, export and batch-prediction tests (read-only)."""
    return fit_tiny_bundles(tmp_path_factory.mktemp("bundles"))

def write_inverted(src: Path, dst: Path) -> Path:
    """A copy of image folder ``src`` (any depth) with inverted intensities: a clear appearance shift."""
    from PIL import ImageOps

    for f in sorted(src.rglob("*.png")):
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        ImageOps.invert(Image.open(f).convert("RGB")).save(out)
    return dst


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for servers and process groups in tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def audio_tones(tmp_path_factory):
    """(train folder, test folder, tiny random Whisper checkpoint): 8 kHz tones in two classes,
    five and two clips per class, made on the spot (no audio file is committed)."""
    from headstart.testing.audio import tiny_whisper_dir, tone_folder

    root = tmp_path_factory.mktemp("tones")
    return (tone_folder(root / "train", n_per_class=5, seed=0), tone_folder(root / "test", n_per_class=2, seed=1),
            tiny_whisper_dir(root / "whisper"))


@pytest.fixture(scope="module")
def audio_bundle(audio_tones, tmp_path_factory) -> Path:
    """A bundle of a tiny random Whisper probed on the 8 kHz tones (classes high, low)."""
    from headstart.api import Headstart

    train, _, whisper = audio_tones
    out = tmp_path_factory.mktemp("audio-bundle") / "tones"
    Headstart(backbone=f"hf:{whisper}", verbose=False, run={"out": out}, runtime={"cache_dir": False}).fit(str(train))
    return out
