"""AdaBN (Li et al. 2016): re-estimate every BatchNorm layer's statistics on the target domain's
unlabeled inputs, weights untouched. An appearance shift (another camera, inverted or textured
images) moves the activations' means and variances; normalising each domain with its own
statistics maps both onto the scale the layers after them were trained on. No training, one pass
over the target inputs; backbones without BatchNorm (transformers) have nothing to re-estimate."""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def adapt_batchnorm(model: nn.Module, batches: Iterable[Any], device: torch.device | str = "cpu") -> int:
    """Replace the running statistics of every BatchNorm in ``model`` by the exact mean and
    variance over ``batches`` of inputs (cumulative average: ``momentum=None``); everything else
    stays in eval mode (no dropout). Returns the number of layers re-estimated."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    was = model.training
    model.eval()
    momenta = [m.momentum for m in layers]
    before = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        seen = 0
        for x in batches:
            x = {k: v.to(device) for k, v in x.items()} if isinstance(x, dict) else x.to(device)
            model(x)
            seen += 1
        if seen == 0:
            raise ValueError("AdaBN: no target inputs to estimate the statistics from")
    except BaseException:  # keep the source statistics: nothing already learned is lost
        for m, (mean, var, n) in zip(layers, before):
            m.running_mean.copy_(mean), m.running_var.copy_(var), m.num_batches_tracked.copy_(n)
        raise
    finally:
        for m, mom in zip(layers, momenta):
            m.momentum = mom
        model.train(was)
    return len(layers)
