"""Unsupervised domain adaptation as tasks: classification on the labeled source plus a loss that
pulls the unlabeled target's features (or predictions) towards the source's, trained in the one
trainer with a second, unlabeled stream (``needs = ("unlabeled",)``).

- ``dann``: a domain discriminator behind a gradient-reversal layer (Ganin et al. 2016); the
  reversal coefficient ramps up as ``2 / (1 + exp(-10 p)) - 1`` over training progress ``p``;
- ``cdan``: DANN whose discriminator sees the features conditioned on the predictions, their
  multilinear map ``f (x) softmax(g)`` (randomised when ``D x C`` is large), with entropy
  conditioning: confident examples weigh more (CDAN+E, Long et al. 2018);
- ``coral``: deep CORAL, the distance between the domains' feature covariances (Sun & Saenko 2016);
- ``mmd``: multi-kernel maximum mean discrepancy between the domains' features, Gaussian kernels
  at bandwidths spread around the batch's mean squared distance (Long et al. 2015);
- ``entropy``: information maximisation on the target predictions: confident per example
  (low conditional entropy) yet diverse over the batch (high marginal entropy), which keeps
  entropy minimisation from collapsing onto one class (as in SHOT, Liang et al. 2020).

Each alignment weight follows the same ramp as DANN's coefficient, so the classifier learns the
source first. The source and target batches go through the model together (one forward for
image tensors, so BatchNorm sees both domains; two for token dicts of different lengths).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from headstart.model import ModelOutput
from headstart.tasks.classification import ClassificationTask
from headstart.tasks.feature_alignment import FeatureAlignTask, information_maximisation


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad, None


def reverse_gradient(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity forward; the gradient multiplied by ``-coeff`` backward."""
    return _GradientReversal.apply(x, coeff)


def ramp(progress: float) -> float:
    """DANN's schedule: 0 at the start of training, about 1 from a third of the way on."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||C_s - C_t||_F^2 / (4 d^2)``, C the (d, d) feature covariances."""
    d = source.shape[1]
    cs, ct = torch.cov(source.float().T), torch.cov(target.float().T)
    return ((cs - ct) ** 2).sum() / (4 * d * d)


def mmd_loss(source: torch.Tensor, target: torch.Tensor, scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
             ) -> torch.Tensor:
    """Biased MMD^2 with a sum of Gaussian kernels, bandwidths ``scale * mean squared distance``."""
    x = torch.cat([source, target]).float()
    d2 = torch.cdist(x, x).pow(2)
    base = d2.detach().sum() / max(1, x.shape[0] * (x.shape[0] - 1))
    k = sum(torch.exp(-d2 / (s * base + 1e-12)) for s in scales)
    n = source.shape[0]
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


@dataclass
class DomainOutput(ModelOutput):
    target_features: torch.Tensor  # (M, D) the unlabeled batch's pooled features
    target_logits: torch.Tensor  # (M, C)


class DomainAdaptationTask(ClassificationTask):
    """Classification on the source, plus ``weight * ramp(progress) * alignment(source, target)``."""

    name = ""
    needs = ("unlabeled",)

    def __init__(self, weight: float = 1.0, label_smoothing: float = 0.1) -> None:
        super().__init__(label_smoothing=label_smoothing)
        self.weight = weight

    def forward(self, model: nn.Module, batch: dict[str, Any]) -> Any:
        xs, xt = batch["inputs"], batch.get("unlabeled")
        if xt is None:  # evaluation batches: no target stream
            return model(xs)
        if torch.is_tensor(xs):
            out, n = model(torch.cat([xs, xt])), len(xs)
            return DomainOutput(out.features[:n], out.logits[:n], out.features[n:], out.logits[n:])
        s, t = model(xs), model(xt)
        return DomainOutput(s.features, s.logits, t.features, t.logits)

    def alignment(self, output: DomainOutput, coeff: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss(self, output: Any, batch: dict[str, Any], progress: float) -> dict[str, torch.Tensor]:
        terms = super().loss(output, batch, progress)
        if not isinstance(output, DomainOutput):
            return terms
        coeff = self.weight * ramp(progress)
        extra = self.alignment(output, coeff)
        return {**extra, "source_loss": terms["loss"], "loss": terms["loss"] + extra["alignment"]}


class DANNTask(DomainAdaptationTask):
    name = "dann"

    def __init__(self, weight: float = 1.0, hidden: int = 256, label_smoothing: float = 0.1) -> None:
        super().__init__(weight=weight, label_smoothing=label_smoothing)
        self.hidden = hidden

    def modules(self, num_features: int) -> dict[str, nn.Module]:
        self.discriminator_ = nn.Sequential(nn.Linear(num_features, self.hidden), nn.ReLU(),
                                            nn.Linear(self.hidden, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 1))
        return {"discriminator": self.discriminator_}

    def alignment(self, output: DomainOutput, coeff: float) -> dict[str, torch.Tensor]:
        f = torch.cat([output.features, output.target_features]).float()
        return self._adversarial(reverse_gradient(f, coeff), len(output.features))

    def _adversarial(self, h: torch.Tensor, n_source: int, weight: torch.Tensor | None = None
                     ) -> dict[str, torch.Tensor]:
        """The discriminator's loss on ``h`` (source rows first). The reversal before ``h`` carries
        the coefficient: the discriminator itself learns at full strength."""
        logit = self.discriminator_(h).squeeze(1)
        domain = (torch.arange(len(logit), device=logit.device) < n_source).to(logit)
        loss = F.binary_cross_entropy_with_logits(logit, domain, weight=weight)
        return {"alignment": loss, "domain_accuracy": ((logit > 0).float() == domain).float().mean()}


class MultilinearMap(nn.Module):
    """``T(f, g)``: the flattened outer product ``g f^T`` (``D x C`` wide), or, past ``max_dim``,
    its randomised estimate ``(f R_f) * (g R_g) / sqrt(max_dim)`` with fixed Gaussian ``R``
    (buffers, so checkpoints and bundles keep them)."""

    def __init__(self, num_features: int, num_classes: int, max_dim: int = 1024, seed: int = 0) -> None:
        super().__init__()
        self.randomised = num_features * num_classes > max_dim
        self.out_dim = max_dim if self.randomised else num_features * num_classes
        if self.randomised:
            gen = torch.Generator().manual_seed(seed)
            self.register_buffer("rf", torch.randn(num_features, max_dim, generator=gen))
            self.register_buffer("rg", torch.randn(num_classes, max_dim, generator=gen))

    def forward(self, f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if self.randomised:
            return (f @ self.rf) * (g @ self.rg) / math.sqrt(self.out_dim)
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)


def entropy_weights(probs: torch.Tensor) -> torch.Tensor:
    """CDAN+E's ``1 + exp(-H(p))`` per example, normalised to mean 1 over the batch."""
    h = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1)
    w = 1.0 + torch.exp(-h)
    return w / w.sum() * len(w)


class CDANTask(DANNTask):
    name = "cdan"

    def __init__(self, weight: float = 1.0, hidden: int = 256, max_dim: int = 1024, entropy: bool = True,
                 label_smoothing: float = 0.1) -> None:
        super().__init__(weight=weight, hidden=hidden, label_smoothing=label_smoothing)
        self.max_dim, self.entropy = max_dim, entropy

    def modules(self, num_features: int) -> dict[str, nn.Module]:
        self.map_ = MultilinearMap(num_features, self.num_outputs, self.max_dim)
        mods = super().modules(self.map_.out_dim)
        return {**mods, "multilinear_map": self.map_}

    def alignment(self, output: DomainOutput, coeff: float) -> dict[str, torch.Tensor]:
        f = torch.cat([output.features, output.target_features]).float()
        g = torch.softmax(torch.cat([output.logits, output.target_logits]).float(), 1).detach()
        return self._adversarial(reverse_gradient(self.map_(f, g), coeff), len(output.features),
                                 entropy_weights(g) if self.entropy else None)


class CORALTask(DomainAdaptationTask):
    name = "coral"

    def alignment(self, output: DomainOutput, coeff: float) -> dict[str, torch.Tensor]:
        c = coral_loss(output.features, output.target_features)
        return {"alignment": coeff * c, "coral": c}


class MMDTask(DomainAdaptationTask):
    name = "mmd"

    def alignment(self, output: DomainOutput, coeff: float) -> dict[str, torch.Tensor]:
        m = mmd_loss(output.features, output.target_features)
        return {"alignment": coeff * m, "mmd": m}


class EntropyTask(DomainAdaptationTask):
    name = "entropy"

    def __init__(self, weight: float = 0.3, label_smoothing: float = 0.1) -> None:
        super().__init__(weight=weight, label_smoothing=label_smoothing)

    def alignment(self, output: DomainOutput, coeff: float) -> dict[str, torch.Tensor]:
        im = information_maximisation(output.target_logits)
        return {"alignment": coeff * im, "information": im}


ADAPTATION_TASKS = (DANNTask, CDANTask, CORALTask, MMDTask, EntropyTask, FeatureAlignTask)
# what ``adapt=`` accepts: the tasks above, and AdaBN (headstart.adaptation.batchnorm: no training)
# ``auto``: feature_align with 3 self-training rounds and choose=True (source-only kept unless the
# label-free criterion prefers the adapted model)
ADAPTATION_METHODS = (*(t.name for t in ADAPTATION_TASKS), "adabn", "auto")
