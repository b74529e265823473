"""``lora`` (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"): the
backbone's weights stay frozen and PEFT adds a trainable low-rank update ``B @ A`` (rank ``r``,
scaled by ``alpha / r``) beside chosen layers; the head trains alongside at its own learning
rate. LoRA is PEFT's (``peft.functional.inject_adapter_in_model``): nothing here re-implements it.

Target modules by backbone family, when ``target_modules`` is not given (first family whose
layer names are all present):

- transformers text encoders (BERT, MiniLM, RoBERTa, ...): ``query``, ``key``, ``value`` and the
  attention output projection ``attention.output.dense``;
- DistilBERT ``q_lin/k_lin/v_lin/out_lin``; MPNet/T5 ``q/k/v/o``; ``q_proj/k_proj/v_proj`` +
  ``out_proj``/``o_proj`` (Whisper, CLIP, Llama);
- timm ViTs (and other timm transformers with ``attn.qkv``): ``attn.qkv``, ``attn.proj``;
- timm EfficientNet / MobileNet CNNs: the 1x1 pointwise convolutions ``conv_pw``, ``conv_pwl``;
- anything else (e.g. ``tiny:cnn``): every ``nn.Linear`` and ungrouped ``nn.Conv2d``.

``target_modules`` overrides: a list of names (or a comma-separated string) matched as PEFT
matches them (the full module name or a ``.``-separated suffix of it).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from headstart.backbones._base import state_hash
from headstart.strategies._base import decay_groups
from headstart.strategies.fine_tuning import FineTuning

ADAPTER = "default"  # PEFT's adapter name: one adapter per model here
PREFIX = "lora_"  # PEFT's prefix of LoRA's own modules and parameters (LoraModel.prefix)

# (family, layer names that must all be present, PEFT target_modules)
FAMILIES: tuple[tuple[str, tuple[str, ...], list[str]], ...] = (
    ("BERT-style attention (query/key/value/output)", ("query", "key", "value"),
     ["query", "key", "value", "attention.output.dense"]),
    ("DistilBERT attention", ("q_lin", "k_lin", "v_lin"), ["q_lin", "k_lin", "v_lin", "out_lin"]),
    ("attention q/k/v/o", ("q", "k", "v", "o"), ["q", "k", "v", "o"]),
    ("attention q_proj/k_proj/v_proj", ("q_proj", "k_proj", "v_proj"),
     ["q_proj", "k_proj", "v_proj", "out_proj", "o_proj"]),
    ("ViT attention (qkv/proj)", ("qkv",), ["attn.qkv", "attn.proj"]),
    ("CNN pointwise 1x1 convolutions", ("conv_pw",), ["conv_pw", "conv_pwl"]),
)


def default_targets(backbone: nn.Module) -> tuple[str, list[str]]:
    """(family, PEFT target_modules) for ``backbone``: the table above, else every Linear and
    ungrouped Conv2d by full name."""
    layers = {n: m for n, m in backbone.named_modules()
              if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)}
    leaves = {n.rsplit(".", 1)[-1] for n in layers}
    for family, needed, targets in FAMILIES:
        if set(needed) <= leaves:
            return family, list(targets)
    if not layers:
        raise ValueError(f"{getattr(backbone, 'spec', type(backbone).__name__)}: no Linear or Conv2d layer "
                         "for LoRA; give target_modules")
    return "every Linear and ungrouped Conv2d", sorted(layers)


def has_lora(module: nn.Module) -> bool:
    """Whether PEFT layers are already injected into ``module``."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(isinstance(m, BaseTunerLayer) for m in module.modules())


def is_adapter_key(name: str) -> bool:
    """A parameter/state key that belongs to LoRA (``...query.lora_A.default.weight``)."""
    return any(part.startswith(PREFIX) for part in name.split("."))


def base_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The frozen base weights under their original names (LoRA's ``.base_layer`` removed)."""
    return {k.replace(".base_layer.", "."): v for k, v in module.state_dict().items() if not is_adapter_key(k)}


def config_to_dict(config: Any) -> dict[str, Any]:
    """A PEFT config as JSON-safe values (sets as sorted lists, enums as their values)."""
    out = {}
    for k, v in config.to_dict().items():
        if isinstance(v, (set, frozenset)):
            v = sorted(v)
        out[k] = getattr(v, "value", v)
    return out


def config_from_dict(d: dict[str, Any]) -> Any:
    """The PEFT config saved by ``config_to_dict`` (PEFT's own ``get_peft_config``)."""
    from peft import get_peft_config

    return get_peft_config(dict(d))


def apply_lora(backbone: nn.Module, config: Any) -> None:
    """Inject LoRA layers into ``backbone`` in place (PEFT freezes every base weight)."""
    from peft.functional import inject_adapter_in_model

    inject_adapter_in_model(config, backbone, adapter_name=ADAPTER)


def adapter_meta(backbone: nn.Module) -> dict[str, Any] | None:
    """What a bundle records to rebuild LoRA (None without PEFT layers): PEFT's version and config,
    and the SHA-256 of the frozen base weights the adapter was trained on."""
    if not has_lora(backbone):
        return None
    import peft

    return {"library": "peft", "version": peft.__version__,
            "config": config_to_dict(backbone.peft_config[ADAPTER]), "base_sha256": state_hash(base_state(backbone))}


def merge_lora(module: nn.Module) -> int:
    """Fold every LoRA update into its base weight (``W + B @ A * alpha / r``, PEFT's ``merge``)
    and put the plain base layer back, as PEFT's ``merge_and_unload`` does; returns the number of
    layers merged. The module then has no PEFT layers and the same outputs up to rounding."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    tuned = [(n, m) for n, m in module.named_modules() if isinstance(m, BaseTunerLayer)]
    for name, layer in tuned:
        layer.merge(safe_merge=True)
        parent_name, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent_name) if parent_name else module, child, layer.get_base_layer())
    if hasattr(module, "peft_config"):
        del module.peft_config
    return len(tuned)


def _names(value: Any) -> list[str] | None:
    if value is None:
        return None
    names = [s.strip() for s in value.split(",")] if isinstance(value, str) else [str(s) for s in value]
    return [s for s in names if s] or None


class LoRA(FineTuning):
    """Fine-tuning's run settings (step budget, warmup + cosine, early stopping, frozen BatchNorm)
    with only the adapters and the head trainable."""

    name = "lora"

    def __init__(self, r: int = 8, alpha: float = 16.0, dropout: float = 0.1, target_modules: Any = None,
                 lr: float = 1e-3, head_lr: float | None = None, weight_decay: float = 0.01, steps: int = 400,
                 epochs: int | None = None, max_epochs: int = 60, batch_size: int | None = None,
                 warmup: float = 0.1, augment: bool = False, init_head: str = "random", grad_clip: float = 1.0,
                 patience: int = 5) -> None:
        super().__init__(freeze="none", lr=lr, head_lr=head_lr, layer_decay=1.0, weight_decay=weight_decay,
                         steps=steps, epochs=epochs, max_epochs=max_epochs, batch_size=batch_size, warmup=warmup,
                         augment=augment, init_head=init_head, batchnorm="frozen", grad_clip=grad_clip,
                         patience=patience)
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = target_modules

    def validate(self, n_groups: int) -> None:
        super().validate(n_groups)
        if int(self.r) < 1:
            raise ValueError(f"lora: r (the rank) must be >= 1, got {self.r!r}")
        if not 0 <= float(self.dropout) < 1:
            raise ValueError(f"lora: dropout must be in [0, 1), got {self.dropout!r}")

    def config(self, backbone: nn.Module) -> tuple[Any, str]:
        """(PEFT LoraConfig, how the targets were chosen) for ``backbone``."""
        from peft import LoraConfig

        targets = _names(self.target_modules)
        family = "given" if targets else ""
        if targets is None:
            family, targets = default_targets(backbone)
        return LoraConfig(r=int(self.r), lora_alpha=float(self.alpha), lora_dropout=float(self.dropout),
                          target_modules=targets, bias="none"), family

    def prepare(self, model: nn.Module) -> str:
        """Inject LoRA into the backbone (once: a warm-started model keeps its adapter)."""
        if has_lora(model.backbone):
            return "LoRA already in the model"
        config, family = self.config(model.backbone)
        try:
            apply_lora(model.backbone, config)
        except ValueError as e:  # PEFT: "Target modules ... not found in the base model"
            raise ValueError(f"lora on {getattr(model.backbone, 'spec', '?')}: {e}") from None
        n = sum(p.numel() for n_, p in model.backbone.named_parameters() if is_adapter_key(n_))
        total = sum(p.numel() for p in model.backbone.parameters())
        return (f"LoRA r={self.r} alpha={self.alpha} on {family} ({', '.join(sorted(config.target_modules))}): "
                f"{n:,} adapter parameters, {n / total:.2%} of the backbone's {total:,}")

    def set_trainable(self, backbone: nn.Module, groups: set[int]) -> None:
        """Only LoRA's own parameters in ``groups`` train; every base weight stays frozen."""
        adapters = {id(p) for n, p in backbone.named_parameters() if is_adapter_key(n)}
        for i, params in enumerate(backbone.layer_groups()):
            for p in params:
                p.requires_grad_(i in groups and id(p) in adapters)

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """The adapters at ``lr`` (weight decay on their matrices), the head at ``head_lr``."""
        adapters = [p for n, p in model.backbone.named_parameters() if is_adapter_key(n) and p.requires_grad]
        head_lr = self.head_lr if self.head_lr is not None else self.lr
        return decay_groups(adapters, self.lr, self.weight_decay, 0) + [
            {"params": list(model.head.parameters()), "lr": head_lr, "weight_decay": self.weight_decay, "group": 1}]
