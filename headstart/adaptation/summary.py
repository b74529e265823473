"""What adaptation bought, measured: the adapted model beside a source-only one on the source test
split and (when the user has some) on labeled target data kept for evaluation only; the shift
statistics and the domains' PCA picture before and after adaptation; per-class target accuracy
(a shift often kills a few classes outright); the label-free criterion's pick beside the oracle's.

Target labels never reach training or any choice: they are read after the model is fitted and
only compared with its predictions. The source-only model is the one ``adapt='auto'`` already
compared against when there is one (same cached features, same C); otherwise a linear probe on
the frozen pretrained backbone's cached features, fitted on the same training split: cheap, and
the baseline a user without adaptation would get from ``headstart fit`` on these features."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from headstart.adaptation.plot import project_domains
from headstart.adaptation.shift import ShiftReport, p_text, shift_test
from headstart.data._base import LabeledData
from headstart.data.validate import check_data

MODELS = ("source_only", "adapted")
NEAR_ZERO = 0.1  # a class the model gets right at most this often on the target is flagged
CRITERION = "information maximisation of the predictions on the unlabeled target (lower is better)"


@dataclass
class AdaptationSummary:
    """``Headstart.adaptation_``: every figure the report's "Domain adaptation" section shows."""

    method: str
    baseline: str  # which source-only model the adapted one is compared with
    after_features: str  # which features the "after" shift statistics and plot are computed on
    accuracy: dict[str, dict[str, float]]  # split -> model -> accuracy (0..1)
    sizes: dict[str, int]
    shift_before: ShiftReport
    shift_after: ShiftReport
    label_free: dict[str, Any]  # criterion, score per model, pick, returned
    per_class: list[dict[str, Any]] = field(default_factory=list)  # target test: class, support, accuracy per model
    oracle: dict[str, Any] | None = None  # pick and gap (points) when target labels were given
    notes: list[str] = field(default_factory=list)
    final_target_accuracy: float | None = None  # the returned model's, when final_fit='all' trained it again
    projections: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``adaptation.json``); the plot points stay out."""
        return {"method": self.method, "baseline": self.baseline, "after_features": self.after_features,
                "accuracy": self.accuracy, "sizes": self.sizes, "shift_before": self.shift_before.to_dict(),
                "shift_after": self.shift_after.to_dict(), "label_free": self.label_free,
                "per_class": self.per_class, "oracle": self.oracle, "notes": self.notes,
                "final_target_accuracy": self.final_target_accuracy, "collapsed_classes": self.collapsed()}

    def collapsed(self) -> dict[str, list[str]]:
        """Per model, the target classes it gets right at most ``NEAR_ZERO`` of the time."""
        return {m: [r["class"] for r in self.per_class if r[m] <= NEAR_ZERO] for m in MODELS}

    def lines(self) -> list[str]:
        """The two or three lines the CLI prints after fit."""
        acc = self.accuracy
        parts = [f"{split.replace('_', ' ')} {100 * a['source_only']:.1f}% -> {100 * a['adapted']:.1f}%"
                 for split, a in acc.items()]
        b, a = self.shift_before, self.shift_after
        out = [f"adaptation ({self.method}), source-only -> adapted: " + ("; ".join(parts) or "no labeled test data"),
               f"shift before -> after: domain classifier {100 * b.domain_accuracy:.0f}% -> "
               f"{100 * a.domain_accuracy:.0f}% (50% = chance), MMD² {b.mmd2:.3g} -> {a.mmd2:.3g} ({p_text(a.p_value)})"]
        lf = self.label_free
        line = f"label-free pick: {lf['pick']} (returned: {lf['returned']})"
        if self.oracle is not None:
            line += f"; oracle pick on the target test: {self.oracle['pick']}, gap {self.oracle['gap_points']:.1f} points"
        return out + [line]


def read_target_test(est: Any, target_test: Any, modality: str) -> LabeledData:
    """Labeled target-domain data for evaluation only, checked like ``evaluate`` checks (labels the
    model knows; bad inputs skipped and listed). Read before training so bad input fails early."""
    data = est._read(target_test, modality=modality)
    if data.labels is None:
        raise ValueError(f"target_test: no labels (column {est.data_.label_column!r} missing?); it is the target "
                         "domain's labeled data for evaluation (unlabeled inputs go to unlabeled=)")
    report, data, _, _ = check_data(data, policy=est.data_.on_bad_sample, min_classes=1,
                                    known_labels=est.classes_.tolist())
    if report.bad:
        est._log("target_test: " + report.format())
    return data


def _feature_fn(est: Any, backbone: Any) -> Callable[[LabeledData], torch.Tensor]:
    """Frozen ``backbone`` features through the fit's feature cache (none: computed), memoised."""
    from headstart.features.cache import extract_features

    device = next(est.model_.parameters()).device
    kw = dict(batch_size=max(64, est.runtime_.batch_size), device=device)
    memo: dict[int, torch.Tensor] = {}

    def feats(data: LabeledData) -> torch.Tensor:
        if id(data) not in memo:
            cache = getattr(est, "cache_", None)
            memo[id(data)] = (cache.features(backbone, data, **kw) if cache is not None
                              else extract_features(backbone, data, **kw)).float()
        return memo[id(data)]

    return feats


def _pretrained_backbone(est: Any, train: LabeledData) -> Any:
    """The backbone as it was before any training: the fitted one when the method never touches it
    (feature_align), else built again exactly as ``fit`` built it (same seed, same preprocessing)."""
    if est.task_.on_cached_features:
        return est.model_.backbone
    from headstart.backbones.prepare import prepare_backbone

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(est.seed)  # randomly initialised test backbones come out identical
        bb = prepare_backbone(est.model_.backbone.spec, train, image_size=est._prep("image_size"),
                              multiscale=est._prep("multiscale", True), max_length=est._prep("max_length"),
                              max_seconds=est._prep("max_seconds"), seed=est.seed)
    return bb.to(next(est.model_.parameters()).device).eval()


def _models(est: Any, bb: Any, feats: Callable[[LabeledData], torch.Tensor], train: LabeledData,
            ) -> tuple[dict[str, Callable[[LabeledData], torch.Tensor]], str]:
    """(model name -> logits function, the baseline's description)."""
    from headstart.heads.linear import LinearHead
    from headstart.heads.probe import fit_probe

    def on(head: torch.nn.Module) -> Callable[[LabeledData], torch.Tensor]:
        return lambda d: head(feats(d)).detach().float().cpu()

    cands = getattr(est.task_, "candidates_", None)
    if cands is not None:  # adapt='auto' / choose=True fitted both: reuse them, train nothing again
        return ({"source_only": on(cands["source_only"]), "adapted": on(cands["feature_align"])},
                "the source-only linear probe that the label-free choice compared against (same cached "
                "pretrained features, same C)")
    head = LinearHead(bb.num_features, est.task_.num_outputs)
    targets = est.task_.encode(train.labels, train.origins, "train")
    info = fit_probe(feats(train), targets, head, block_dims=bb.feature_block_dims(),
                     standardize=bb.standardize_features, seed=est.seed)
    return ({"source_only": on(head), "adapted": lambda d: est._logits(d).float()},
            f"a linear probe on the frozen pretrained backbone's cached features, fitted on the same source "
            f"training split (C={info['C']:g} by cross-validation): no adaptation, no backbone training")


def _after_features(est: Any, feats: Callable[[LabeledData], torch.Tensor], source: LabeledData,
                    target: LabeledData) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Source and target features as the adapted model sees them, and what they are."""
    if est.task_.on_cached_features:
        from headstart.tasks.feature_alignment import domain_stats

        (ms, ss), (mt, st) = domain_stats(feats(source)), domain_stats(feats(target))
        return ((feats(source).double() - ms) / ss, (feats(target).double() - mt) / st,
                "the pretrained features standardised per domain (what the aligned probe sees)")
    from headstart.adaptation.batchnorm import adapt_batchnorm
    from headstart.data.loaders import make_loader
    from headstart.features.cache import extract_features

    bb = est.model_.backbone
    device = next(bb.parameters()).device
    kw = dict(batch_size=max(64, est.runtime_.batch_size), device=device)
    target_f = extract_features(bb, target, **kw)
    if est.adapt != "adabn":
        return (extract_features(bb, source, **kw), target_f,
                f"the backbone trained with {est.adapt}: its features of both domains")
    own = copy.deepcopy(bb)  # AdaBN's premise: each domain normalised with its own statistics
    loader = make_loader(source, None, own.pretrained_cfg, own.tokenizer(), train=False, batch_size=kw["batch_size"])
    adapt_batchnorm(own, (b["inputs"] for b in loader), device)
    return (extract_features(own, source, **kw), target_f,
            "the trained backbone's features, each domain through its own BatchNorm statistics (AdaBN)")


def _accuracy(logits: torch.Tensor, targets: np.ndarray) -> float:
    return float((logits.argmax(1).numpy() == targets).mean()) if len(targets) else float("nan")


def _per_class(est: Any, preds: dict[str, np.ndarray], targets: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for k, name in enumerate(est.classes_.tolist()):
        mask = targets == k
        if mask.any():
            rows.append({"class": str(name), "support": int(mask.sum()),
                         **{m: float((p[mask] == k).mean()) for m, p in preds.items()}})
    return rows


def _choices(est: Any, scores: dict[str, float], target_acc: dict[str, float] | None
             ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The label-free pick (lower information-maximisation score), what ``fit`` returned, and the
    oracle pick (higher target-test accuracy) with the gap between the two picks in points."""
    pick = min(MODELS, key=lambda m: (scores[m], m != "source_only"))  # ties: never silently adapt
    kept = getattr(est.task_, "choice_", {}).get("kept") if getattr(est.task_, "choose", False) else None
    returned = {"source_only": "source_only", "feature_align": "adapted"}.get(kept, "adapted")
    label_free = {"criterion": CRITERION, "scores": scores, "pick": pick, "returned": returned,
                  "acts_on_it": kept is not None}
    if target_acc is None:
        return label_free, None
    best = max(MODELS, key=lambda m: (target_acc[m], m == pick))
    return label_free, {"pick": best, "gap_points": 100 * (target_acc[best] - target_acc[pick]),
                        "returned_gap_points": 100 * (target_acc[best] - target_acc[returned])}


def summarise_adaptation(est: Any, unlabeled: LabeledData, target_test: LabeledData | None = None,
                         ) -> AdaptationSummary:
    """The summary for a fitted, adapted ``est`` (its measured model: trained on ``splits_['train']``,
    as its test metrics are), ``unlabeled`` the target inputs it adapted to."""
    from headstart.tasks.feature_alignment import information_maximisation

    train, test = est.splits_["train"], est.splits_.get("test")
    bb = _pretrained_backbone(est, train)
    feats = _feature_fn(est, bb)
    models, baseline = _models(est, bb, feats, train)
    labeled = {k: d for k, d in (("source_test", test), ("target_test", target_test)) if d is not None}
    targets = {k: est.task_.encode(d.labels, d.origins, k) for k, d in labeled.items()}
    with torch.inference_mode():
        logits = {k: {m: f(d) for m, f in models.items()} for k, d in labeled.items()}
        scores = {m: float(information_maximisation(f(unlabeled))) for m, f in models.items()}
    accuracy = {k: {m: _accuracy(lg, targets[k]) for m, lg in logits[k].items()} for k in labeled}
    before = (feats(train).double(), feats(unlabeled).double())
    after_s, after_t, after_what = _after_features(est, feats, train, unlabeled)
    label_free, oracle = _choices(est, scores, accuracy.get("target_test"))
    per_class = (_per_class(est, {m: lg.argmax(1).numpy() for m, lg in logits["target_test"].items()},
                            targets["target_test"]) if target_test is not None else [])
    shift_after = shift_test(after_s, after_t, seed=est.seed)
    return AdaptationSummary(
        method=est.adapt, baseline=baseline, after_features=after_what, accuracy=accuracy,
        sizes={"source_train": len(train), "target_unlabeled": len(unlabeled),
               **{k: len(d) for k, d in labeled.items()}},
        shift_before=shift_test(*before, seed=est.seed), shift_after=shift_after,
        label_free=label_free, per_class=per_class, oracle=oracle, notes=_notes(est, target_test, shift_after),
        projections={"before": project_domains(*before, max_points=1000, seed=est.seed),
                     "after": project_domains(after_s, after_t, max_points=1000, seed=est.seed)})


def _notes(est: Any, target_test: LabeledData | None, after: ShiftReport) -> list[str]:
    notes = ["shift before: the pretrained backbone's features of the source training split and of the "
             "unlabeled target, the same rows as after"]
    if after.domain_accuracy < 0.45:
        notes.append(f"a domain classifier at {100 * after.domain_accuracy:.0f}% (below 50%) means the domains "
                     "cannot be told apart: with each domain centred on its own mean, a held-out fold's mean leans "
                     "towards the other domain, so cross-validation lands below chance")
    if target_test is not None:
        notes.append("target_test labels were used for this evaluation only: never for training or any choice")
    else:
        notes.append("no labeled target data (target_test): target accuracy and the oracle pick are not known")
    if est.task_.on_cached_features or est.adapt == "adabn":
        notes.append("the adapted model carries the target's statistics, so its source-test figure is measured "
                     "with them (it is built for the target domain)")
    return notes


def record_final(summary: AdaptationSummary, est: Any, target_test: LabeledData | None) -> None:
    """After ``final_fit='all'`` retrained on every source label: the returned model's target
    accuracy (the summary's figures are the measured model's, trained on the split)."""
    summary.notes.append("figures above: the measured model, trained on the source training split; the "
                         "returned model was trained again on every source label (final_fit=all)")
    if target_test is not None:
        y = est.task_.encode(target_test.labels, target_test.origins, "target_test")
        summary.final_target_accuracy = _accuracy(est._logits(target_test), y)
