"""``auto``: pick a strategy from the modality and the number of labeled examples, and say why.

The thresholds come from measurements on this project's benchmarks (benchmarks/fmnist.py,
benchmarks/rotten_tomatoes.py; numbers in the closing notes); the recipes are in
``headstart.recipes``.
"""
from __future__ import annotations

from headstart import recipes
from headstart.strategies._base import Strategy
from headstart.strategies.feature_extraction import FeatureExtraction
from headstart.strategies.fine_tuning import FineTuning


def text_fine_tuning() -> FineTuning:
    """The text recipe (``headstart.recipes.TEXT_FINE_TUNING``) as a strategy."""
    return FineTuning(**recipes.TEXT_FINE_TUNING)


_ITEMS = {"image": "images", "text": "texts", "audio": "clips", "timeseries": "series"}


def choose(modality: str, n_train: int, n_classes: int, task: str = "classification",
           adapts: bool = False, on_cached_features: bool = False, tunes_body: bool = False) -> tuple[Strategy, str]:
    """Return (strategy, reason). ``n_classes``: the number of classes (labels for multilabel;
    0 for tasks without classes, such as regression); ``task``: the task's name, for the reason;
    ``adapts``: the task aligns features to unlabeled data, so the backbone must train;
    ``on_cached_features``: the task adapts on the frozen backbone's cached features;
    ``tunes_body``: the task's loss tunes the body and the head comes after (contrastive)."""
    if on_cached_features:
        return (FeatureExtraction(), f"{n_train} examples, {task}: adapts on the frozen backbone's cached "
                                     "features (closed form, no backbone training)")
    if tunes_body:
        steps = recipes.contrastive_steps(n_train)
        return (FineTuning(**{**recipes.CONTRASTIVE_TUNING, "steps": steps, "max_steps": steps}),
                f"{n_train} examples, {task}: the body is tuned on pairs of the labels ({steps} optimizer steps), "
                "then a probe is fitted on the tuned features")
    if adapts:
        what = _ITEMS.get(modality, "images")
        return (text_fine_tuning() if modality == "text" else FineTuning(),
                f"{n_train} {what}, {task}: adapting the backbone's features to the unlabeled target data "
                "needs a strategy that trains them (fine-tuning)")
    if modality == "timeseries":
        return (FineTuning(**recipes.fine_tuning("timeseries")["strategy_params"]),
                f"{n_train} series: the time-series encoder is a small 1-D CNN, fine-tuned whole as Fawaz et al. "
                "2018 do (random head, lr 2e-3, BatchNorm trained, 400 steps): above the probe on its frozen "
                "features and the same CNN from scratch on GunPoint, ArrowHead and OSULeaf (benchmarks/timeseries.py)")
    if modality == "text" and n_train < 64:
        return (FeatureExtraction(),
                f"{n_train} texts (< 64): fine-tuning an encoder on this few swings widely between seeds; "
                "a linear probe on frozen sentence embeddings is the stable choice")
    if modality == "text":
        smoothing = ", label smoothing" if task == "classification" else ""
        return (text_fine_tuning(),
                f"{n_train} texts: fine-tune the whole encoder (small batches, 5 epochs{smoothing}; "
                "a probe-initialised head hurts text here: it fits the training set and starves the encoder)")
    what = _ITEMS.get(modality, "images")
    if n_train < 5000:
        why = ("a linear head on the backbone's cached multi-scale features beats fine-tuning at this size, "
               "at a fraction of its cost") if modality == "image" else (
            "a linear head on the backbone's cached features, at a fraction of fine-tuning's cost (the "
            "threshold measured for images; benchmarks/audio_keywords.py measures the probe for audio)")
        return (FeatureExtraction(), f"{n_train} {what}{_per_class(n_train, n_classes, task)}, < 5000): {why}")
    return (FineTuning(),
            f"{n_train} {what}: enough to fine-tune (LP-FT: a probe on cached features initialises the head, "
            "then the whole network trains with layer-wise lr decay)")


def contrastive_default(modality: str, n_train: int, n_classes: int) -> str | None:
    """Why ``fit``'s defaults tune the body contrastively (``task="contrastive"``) for this text
    classification, or None: between ``recipes.CONTRASTIVE_DEFAULT``'s bounds the full fine-tune
    swings with the texts drawn, and pairs of the labels then a probe do better (below 64 labels: better
    than the probe on the frozen encoder)."""
    lim = recipes.CONTRASTIVE_DEFAULT
    if modality != "text" or n_classes < 2 or n_train < lim["min_train"] or n_train > lim["max_per_class"] * n_classes:
        return None
    instead = ("fitting the probe on the frozen encoder" if n_train < lim["full_steps_from"]
               else "fine-tuning the whole encoder on this few")
    return (f"{n_train} texts ({n_train / n_classes:.0f} per class, <= {lim['max_per_class']}): tune the encoder "
            f"on pairs of the labels (task contrastive) and fit the probe on it, rather than {instead}")


def few_label_text_pooling(modality: str, n_train: int, probes_body: bool, default_encoder: bool) -> str | None:
    """The text pooling of ``fit``'s defaults when they end in the probe on the default encoder's
    body, frozen or contrastively tuned (``probes_body``), with at most
    ``recipes.FEW_LABEL_TEXT_POOLING["max_train"]`` labels (the last half of the layers averaged:
    measured above the last layer there), else None (the encoder's own pooling)."""
    rule = recipes.FEW_LABEL_TEXT_POOLING
    if modality != "text" or not probes_body or not default_encoder or n_train > rule["max_train"]:
        return None
    return str(rule["pooling"])


def _per_class(n_train: int, n_classes: int, task: str) -> str:
    """The opening of the size remark: examples per class, or the label count where labels overlap."""
    if task == "multilabel":
        return f" ({n_classes} labels"
    if n_classes and task == "classification":
        return f" ({n_train / n_classes:.0f} per class"
    return " ("
