"""Zero-shot classification of texts or images: no labeled examples, only the class names or
descriptions.

Each class becomes prompts ("This review is positive.", several templates averaged: a prompt
ensemble, as in CLIP's paper, Radford et al. 2021 — each prompt's embedding normalised, then the
class's mean); an encoder embeds the prompts and the inputs, and an input's scores are its cosine
similarities to each class's mean prompt vector (the ``cosine`` head holds those vectors, so the
result is an ordinary bundle that ``load`` / ``predict`` / ``serve`` use). Texts need a sentence
encoder; images a CLIP-style dual encoder (``hf:`` CLIP / SigLIP ids, ``open_clip:`` specs: see
``headstart.backbones.clip``), whose text tower embeds the prompts into its image space. Two
steps use the unlabeled inputs of DATA themselves (their labels, if any, only score the result):

1. calibration: each class's mean similarity over DATA is subtracted, so a prompt that is close
   to every text (a generic word, a longer prompt) does not swallow all the predictions;
2. self-training: a logistic-regression probe is fitted on the texts the calibrated head is
   surest of (the top ``SELF_TRAIN_SHARE`` per class by margin), and replaces the class vectors.
   Skipped, saying why, when a class has fewer than ``SELF_TRAIN_MIN`` such texts.

Measured on Rotten Tomatoes in ``benchmarks/zero_shot.py``; images only on tiny random CLIPs
(no CLIP weights ship offline here).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from headstart.api import Headstart
from headstart.backbones import DualEncoder, build_backbone
from headstart.backbones.prepare import resolve_device
from headstart.config import DataSpec, Runtime
from headstart.data._base import IMAGE_EXTENSIONS, LabeledData
from headstart.data.sources import from_sequences, read_data
from headstart.data.unlabeled import read_image_files
from headstart.features.cache import FeatureCache, extract_features
from headstart.heads import build_head
from headstart.heads.label_prior import DEFAULT_TEMPLATES
from headstart.heads.probe import fit_probe
from headstart.model import TransferModel
from headstart.tasks import build_task

# Used when no template is given: DEFAULT_TEMPLATES, generic enough for any text, averaged (a
# prompt ensemble); the few-shot probe's class-name prior uses the same ones.
# Images: "a photo of a {label}." and the 7 templates the CLIP authors selected for ImageNet from
# their 80 (github.com/openai/CLIP, notebooks/Prompt_Engineering_for_ImageNet.ipynb).
DEFAULT_IMAGE_TEMPLATES = ("a photo of a {label}.", "itap of a {label}.", "a bad photo of the {label}.",
                           "a origami {label}.", "a photo of the large {label}.", "a {label} in a video game.",
                           "art of the {label}.", "a photo of the small {label}.")
SELF_TRAIN_SHARE = 0.1  # of the texts, per class (N / C * share), the surest by calibrated margin
SELF_TRAIN_MIN = 8  # per class, or self-training is skipped


def _entry(text: str, where: str) -> tuple[str, str]:
    """``label`` or ``label: description`` -> (label, description)."""
    label, sep, desc = text.partition(":")
    label, desc = label.strip(), desc.strip()
    if not label or (sep and not desc):
        raise ValueError(f"{where}: expected 'label' or 'label: description', got {text!r}")
    return label, desc or label


def _entries_from_file(path: Path) -> list[tuple[str, str]]:
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None
        if isinstance(obj, dict) and all(isinstance(v, str) for v in obj.values()):
            return [(str(k).strip(), v.strip() or str(k).strip()) for k, v in obj.items()]
        if isinstance(obj, list) and all(isinstance(v, str) for v in obj):
            return [_entry(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        raise ValueError(f"{path}: expected an object {{label: description}} or a list of labels")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [_entry(line, f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()]


def parse_labels(labels: str | Path | Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """Classes and their descriptions, in the given order: ``"positive,negative"``, ``"fresh:
    a positive review,rotten: a negative review"``, a list, a dict, or a ``.txt`` (one per line,
    ``label: description`` optional) / ``.json`` file."""
    if isinstance(labels, Mapping):
        pairs = [(str(k).strip(), str(v).strip() or str(k).strip()) for k, v in labels.items()]
    elif isinstance(labels, (str, Path)) and Path(labels).suffix.lower() in (".txt", ".json"):
        if not Path(labels).is_file():
            raise FileNotFoundError(f"{labels}: no such labels file")
        pairs = _entries_from_file(Path(labels))
    elif isinstance(labels, str):
        pairs = [_entry(p, "--labels") for p in labels.split(",") if p.strip()]
    else:
        pairs = [_entry(str(p), f"labels[{i}]") for i, p in enumerate(labels)]
    names = [p[0] for p in pairs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"labels: {dupes} given more than once")
    if len(pairs) < 2:
        raise ValueError(f"zero-shot needs at least two classes, got {names}")
    return dict(pairs)


def check_templates(templates: Sequence[str] | None, modality: str = "text") -> tuple[str, ...]:
    """The templates, each with a ``{label}`` slot (default: ``DEFAULT_TEMPLATES``, for images
    ``DEFAULT_IMAGE_TEMPLATES``)."""
    if not templates:
        return DEFAULT_IMAGE_TEMPLATES if modality == "image" else DEFAULT_TEMPLATES
    bad = [t for t in templates if "{label}" not in t]
    if bad:
        raise ValueError(f"template(s) {bad} have no {{label}} slot, e.g. 'This review is {{label}}.'")
    return tuple(templates)


def prompts(descriptions: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Every class's prompts, class by class (C * T strings)."""
    return [t.replace("{label}", d) for d in descriptions for t in templates]


def class_vectors(p: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The prompt ensemble: prompt embeddings (C * T, D), class by class -> (C, D), each class
    the mean of its T prompts' unit vectors (CLIP's ensembling; the head normalises the mean)."""
    v = p.reshape(n_classes, len(p) // n_classes, -1)  # (C, T, D)
    return F.normalize(v.double(), dim=-1).mean(1)


def check_labels(data: LabeledData, classes: Sequence[str]) -> None:
    """Refuse rows whose label is not one of the classes (naming them), before any encoding."""
    if data.labels is None:
        return
    known = set(classes)
    bad = [(o, lab) for o, lab in zip(data.origins, data.labels) if lab is not None and str(lab) not in known]
    if bad:
        shown = "; ".join(f"{o}: {lab!r}" for o, lab in bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ValueError(f"{len(bad)} row(s) have a label that is not one of the given classes "
                         f"({', '.join(classes)}): {shown}")


def _read_folder(root: Path) -> LabeledData:
    """An image folder: flat (unlabeled), or one subfolder per class (the names score the result)."""
    if any(f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS for f in root.iterdir()):
        return read_image_files(root)
    return read_data(root)


def _read(data: Any, spec: DataSpec) -> LabeledData:
    if isinstance(data, LabeledData):
        out = data
    elif isinstance(data, (str, Path)):
        p = Path(data)
        if p.is_dir():
            out = _read_folder(p)
        elif not p.is_file():
            raise FileNotFoundError(f"{data}: no such file or folder (a CSV/TSV/JSONL with a {spec.text_column!r} "
                                    f"or {spec.path_column!r} column, or an image folder)")
        else:
            out = read_data(p, text_column=spec.text_column, path_column=spec.path_column,
                            label_column=spec.label_column)
    elif isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], str):  # (inputs, labels)
        out = from_sequences(list(data[0]), list(data[1]))
    else:
        out = from_sequences(list(data), None)
    if out.modality not in ("text", "image"):
        raise ValueError(f"zero-shot classifies texts or images; {data} holds {out.modality} inputs")
    empty = [] if out.modality == "image" else [o for o, t in zip(out.origins, out.items) if not str(t).strip()]
    if empty:
        raise ValueError(f"{len(empty)} empty text(s): {', '.join(empty[:10])}")
    return out


def logit_scale(sims: np.ndarray) -> float:
    """1 / the spread of the class-vs-class differences: logits of about unit spread, so the
    probabilities are neither all 0.5 nor all 1 (there are no labels to fit a temperature)."""
    spread = float((sims - sims.mean(1, keepdims=True)).std())
    return 1.0 / spread if spread > 1e-8 else 1.0


def confident_rows(scores: np.ndarray, share: float = SELF_TRAIN_SHARE, minimum: int = SELF_TRAIN_MIN,
                   names: Sequence[str] | None = None, noun: str = "texts") -> tuple[np.ndarray, np.ndarray, str]:
    """Rows to self-train on: per class, the ``share * N / C`` inputs predicted as that class with
    the largest margin over the runner-up. Returns (rows, their classes, "") or empty arrays and
    why not (``noun``: what the inputs are called in it)."""
    n, c = scores.shape
    pred = scores.argmax(1)
    top2 = np.sort(scores, 1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    k = int(share * n / c)
    rows, cls = [], []
    for j in range(c):
        mine = np.flatnonzero(pred == j)
        take = mine[np.argsort(-margin[mine], kind="stable")][:k]
        if len(take) < minimum:
            return (np.empty(0, int), np.empty(0, int),
                    f"class {names[j] if names else j!r} has {len(take)} confident {noun} (of {n}: {share:.0%} per class, at "
                    f"least {minimum} needed); more unlabeled {noun} would allow it")
        rows.append(take)
        cls.append(np.full(len(take), j))
    return np.concatenate(rows), np.concatenate(cls), ""


def _accuracy(scores: np.ndarray, targets: np.ndarray | None) -> float | None:
    return None if targets is None else float((scores.argmax(1) == targets).mean())


class ZeroShot:
    """The steps, on embedded inputs ``x`` (N, D) and class vectors ``v`` (C, D); ``stages_``
    holds each stage's (N, C) scores and ``head`` the final one's weights. ``noun``: what the
    inputs are called in the messages."""

    def __init__(self, calibrate: bool = True, self_train: bool = True, seed: int = 0,
                 classes: Sequence[str] | None = None, noun: str = "texts") -> None:
        self.calibrate = calibrate
        self.classes = classes
        self.noun = noun
        self.self_train = self_train
        self.seed = seed

    def fit(self, x: torch.Tensor, v: torch.Tensor, head: Any) -> "ZeroShot":
        xn = F.normalize(x.double(), dim=1)
        sims = (xn @ F.normalize(v.double(), dim=1).T).numpy()  # (N, C) cosine similarities
        self.scale_ = logit_scale(sims)
        self.stages_: dict[str, np.ndarray] = {"raw": self.scale_ * sims}
        offsets = -self.scale_ * sims.mean(0) if self.calibrate else np.zeros(sims.shape[1])
        if self.calibrate:
            self.stages_["calibrated"] = self.stages_["raw"] + offsets
        head.set_class_vectors(v.float(), self.scale_, torch.from_numpy(offsets).float())
        self.self_training_ = "off"
        if self.self_train:
            rows, cls, why = confident_rows(self.stages_["calibrated" if self.calibrate else "raw"],
                                             names=self.classes, noun=self.noun)
            if why:
                self.self_training_ = f"skipped: {why}"
            else:
                info = fit_probe(xn[rows].float(), cls, head, seed=self.seed)
                with torch.no_grad():
                    self.stages_["self_trained"] = head(x.float()).double().numpy()
                self.self_training_ = (f"probe on the {len(rows)} {self.noun} the calibrated scores are surest of "
                                       f"({len(rows) // sims.shape[1]} per class), C={info['C']:g}")
        return self


def _encoder(spec: str, modality: str, built: Any = None) -> Any:
    """The backbone for this modality: a text encoder for texts, a dual encoder for images
    (``built``: ``spec`` already built)."""
    bb = build_backbone(spec) if built is None else built
    if modality == "image" and not isinstance(bb, DualEncoder):
        raise ValueError(f"backbone {spec!r} has no text tower: zero-shot images need a CLIP-style dual encoder "
                         "(hf:openai/clip-vit-base-patch32, hf:google/siglip-base-patch16-224, "
                         "open_clip:ViT-B-32/laion2b_s34b_b79k ...)")
    if modality == "text" and bb.modality != "text":
        raise ValueError(f"backbone {spec!r} is for {bb.modality}; zero-shot text needs a text encoder")
    return bb


def _encode(backbone: Any, data: LabeledData, texts: list[str], rt: Runtime,
            cache: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) embeddings of DATA (through the feature cache) and (P, D) of the prompts (a dual
    encoder's text tower for images). ``cache``: the features of both come from it (the
    planner's in-memory features of its shared backbone) instead of the runtime's cache."""
    device = resolve_device(rt.device)
    backbone.to(device)
    bs = max(64, rt.batch_size)
    if cache is not None:
        x = cache.features(backbone, data, batch_size=bs, device=device)
    elif rt.cache_dir is False:
        x = extract_features(backbone, data, batch_size=bs, device=device)
    else:
        x = FeatureCache(rt.cache_dir).features(backbone, data, batch_size=bs, device=device)
    if isinstance(backbone, DualEncoder):
        return x, backbone.encode_text(texts, batch_size=bs)
    prompt_data = LabeledData(texts, None, "text")
    if cache is not None:
        return x, cache.features(backbone, prompt_data, batch_size=bs, device=device)
    return x, extract_features(backbone, prompt_data, batch_size=bs, device=device)


def zero_shot(data: Any, labels: str | Path | Sequence[str] | Mapping[str, str], *,
              templates: Sequence[str] | None = None, backbone: str = "mpnet", calibrate: bool = True,
              self_train: bool = True, out: str | Path | None = None, seed: int = 0,
              runtime: Runtime | dict[str, Any] | None = None, data_spec: DataSpec | dict[str, Any] | None = None,
              verbose: bool = True, encoder: Any = None, cache: Any = None) -> Headstart:
    """A fitted ``Headstart`` that classifies texts or images into ``labels`` without labeled examples.

    ``data``: the inputs to classify and calibrate on (a CSV/TSV/JSONL of texts or image paths,
    an image folder — flat, or one subfolder per class —, LabeledData, a list, or an (inputs,
    labels) tuple); labels, when present, only score the result (``metrics_["zero_shot"]``:
    accuracy per stage beside the majority-class rate). ``backbone``: a sentence encoder for
    texts, a CLIP-style dual encoder for images. ``out``: write the bundle there. ``encoder``:
    that backbone already built (for ``backbone``), not built again; ``cache``: where the
    features of DATA and of the prompts come from (``MemoryFeatures``: the planner's folds)."""
    t0 = time.perf_counter()
    desc = parse_labels(labels)
    rt, spec = Runtime.coerce(runtime), DataSpec.coerce(data_spec)
    ds = _read(data, spec)
    classes, temps = list(desc), check_templates(templates, ds.modality)
    check_labels(ds, classes)  # before the encoder runs
    bb = _encoder(backbone, ds.modality, encoder)
    x, p = _encode(bb, ds, prompts(list(desc.values()), temps), rt, cache)
    head = build_head("cosine", bb.num_features, len(classes))
    noun = "images" if ds.modality == "image" else "texts"
    zs = ZeroShot(calibrate, self_train, seed, classes, noun).fit(x, class_vectors(p, len(classes)), head)
    est = _estimator(bb.cpu() if encoder is None else bb, head, classes, desc, temps, backbone, rt, spec, out, verbose, seed)
    est.modality_ = ds.modality
    est.metrics_ = {"zero_shot": _report(zs, ds, classes), "n_train": 0}
    est.fit_seconds_ = est.metrics_["fit_seconds"] = time.perf_counter() - t0
    if out is not None:
        est.save(out)
    if verbose:
        print(format_report(est.metrics_["zero_shot"]) + (f"\nbundle written to {out}" if out is not None else ""),
              flush=True)
    return est


def _estimator(bb: Any, head: Any, classes: list[str], desc: dict[str, str], temps: tuple[str, ...], spec: str,
               rt: Runtime, ds: DataSpec, out: Any, verbose: bool, seed: int) -> Headstart:
    """A Headstart in its fitted state (what ``fit`` leaves), so save / predict / serve apply."""
    est = Headstart(backbone=spec, head="cosine", task="classification", seed=seed, runtime=rt, data=ds,
                    run={"out": out}, verbose=verbose)
    est.model_ = TransferModel(bb, head.to(next(bb.parameters(), torch.empty(0)).device)).eval().requires_grad_(False)
    est.task_ = build_task("classification").load_state({"classes": classes})
    est.classes_ = np.array(classes, dtype=object)
    est.modality_ = "text"
    est.strategy_, est.cache_, est.history_ = None, None, []
    est.meta_ = {"strategy": {"name": "zero_shot", "params": {"labels": desc, "templates": list(temps)},
                              "reason": "no labeled examples: similarity to the class descriptions"}}
    return est


def _report(zs: ZeroShot, data: LabeledData, classes: list[str]) -> dict[str, Any]:
    """What was done, and with DATA's labels, the accuracy per stage and the majority rate."""
    rep: dict[str, Any] = {"n": len(data), "inputs": zs.noun, "stages": list(zs.stages_),
                           "self_training": zs.self_training_, "logit_scale": zs.scale_}
    labeled = [i for i, lab in enumerate(data.labels or []) if lab is not None]
    if labeled:
        idx = {c: j for j, c in enumerate(classes)}
        y = np.array([idx[str(data.labels[i])] for i in labeled])
        rep["scored_on"] = len(labeled)
        rep["majority"] = float(np.bincount(y).max() / len(y))
        rep["accuracy"] = {k: _accuracy(s[labeled], y) for k, s in zs.stages_.items()}
    return rep


def format_report(rep: dict[str, Any]) -> str:
    lines = [f"zero-shot on {rep['n']} {rep.get('inputs', 'texts')}; self-training: {rep['self_training']}"]
    if "accuracy" in rep:
        acc = "  ".join(f"{k} {100 * v:.1f}%" for k, v in rep["accuracy"].items())
        lines.append(f"accuracy on DATA's {rep['scored_on']} labels: {acc}  (majority class "
                     f"{100 * rep['majority']:.1f}%; the labels were not used to fit)")
    return "\n".join(lines)
