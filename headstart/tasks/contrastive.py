"""``contrastive``: few-shot classification the SetFit way (Tunstall et al. 2022, "Efficient
Few-Shot Learning Without Prompts"), in the one trainer: first the body (the backbone) is
tuned so that texts of one class embed close together and texts of different classes apart,
then a head is fitted on the tuned body's features (a logistic-regression probe, C by
cross-validation, for the default linear head). The result is an ordinary classifier bundle.

The loss is SetFit's ``CosineSimilarityLoss``: ``(cos(f_i, f_j) - [y_i == y_j])^2``, averaged
over positive pairs and over negative pairs separately (SetFit draws them balanced), but over
every pair *inside each batch*: pairs are never materialised beyond the (B, B) similarity
matrix of the batch in hand, so memory does not grow with the number of labels (SetFit's
O(n²) pair list runs out of memory on large sets: setfit #628, #472). ``mining="hard"`` keeps,
for each example, only its least similar positive and its most similar negative (batch-hard
mining, Hermans et al. 2017). ``blend < 1`` mixes the pretrained weights back into the tuned
body before the head is fitted (``blend * tuned + (1 - blend) * pretrained``: WiSE-FT, Wortsman
et al. 2022), which keeps more of what the pretrained encoder knew when labels are few. The
default 0.5 was chosen on a validation pool outside the test set (benchmarks/few_shot.py; Rotten
Tomatoes, 8 labels per class, 2 seeds: 56.3% mean against 55.7% for the unblended body).

The budget is the strategy's, in optimizer steps (``auto``: ``recipes.CONTRASTIVE_TUNING``),
not SetFit's "iterations". A frozen-backbone strategy is refused: there would be no body to tune.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from headstart.tasks._base import Task
from headstart.tasks.classification import ClassificationTask

MINING = ("all", "hard")


def pair_loss(features: torch.Tensor, targets: torch.Tensor, mining: str = "all") -> torch.Tensor:
    """Cosine-similarity loss over the pairs of one batch: features (B, D), targets (B,).
    ``all``: mean over positive pairs and mean over negative pairs, averaged; ``hard``: each
    example's hardest positive (target 1) and hardest negative (target 0)."""
    z = F.normalize(features.float(), dim=1)
    sim = z @ z.T  # (B, B) cosine similarities: the only pair structure ever built
    same = targets[:, None] == targets[None, :]  # (B, B)
    other = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    pos, neg = same & other, ~same
    if mining == "hard":
        hp = sim.masked_fill(~pos, float("inf")).min(1).values  # (B,) least similar positive
        hn = sim.masked_fill(~neg, float("-inf")).max(1).values  # (B,) most similar negative
        terms = [((hp[pos.any(1)] - 1) ** 2).mean() if pos.any() else None,
                 (hn[neg.any(1)] ** 2).mean() if neg.any() else None]
    else:
        err = (sim - same.float()) ** 2
        terms = [err[pos].mean() if pos.any() else None, err[neg].mean() if neg.any() else None]
    terms = [t for t in terms if t is not None]
    if not terms:  # a batch of one example, or of one class with one example: no pair
        return features.sum() * 0.0
    return sum(terms) / len(terms)


class ContrastiveTask(ClassificationTask):
    """Classification whose training loss tunes the body on pairs; the head comes after."""

    name = "contrastive"

    def __init__(self, mining: str = "all", blend: float = 0.5, label_smoothing: float = 0.1,
                 label_prior: "bool | str" = "auto") -> None:
        super().__init__(label_smoothing=label_smoothing, label_prior=label_prior)
        self.mining = mining
        self.blend = blend  # < 1: the tuned body mixed with the pretrained one before the head (WiSE-FT)

    def fit_targets(self, labels: Any) -> "ContrastiveTask":
        if self.mining not in MINING:
            raise ValueError(f"contrastive: mining must be one of {', '.join(MINING)}, got {self.mining!r}")
        if not 0.0 <= self.blend <= 1.0:
            raise ValueError(f"contrastive: blend must be in [0, 1] (the tuned body's share), got {self.blend!r}")
        super().fit_targets(labels)
        return self

    def loss(self, output: Any, batch: dict[str, Any], progress: float) -> dict[str, torch.Tensor]:
        return {"loss": pair_loss(output.features, batch["targets"], self.mining)}

    def head_after_body(self) -> Task:
        """The head is a classifier on the tuned features: same classes and class weights."""
        head = ClassificationTask(label_smoothing=self.label_smoothing,
                                  label_prior=self.label_prior).load_state(self.state())
        head.class_weights_ = getattr(self, "class_weights_", None)
        return head
