"""CLIP-style dual encoders (Radford et al. 2021, "Learning Transferable Visual Models From
Natural Language Supervision"; SigLIP, Zhai et al. 2023): an image tower and a text tower that
embed into one space, so an image can be compared with a sentence.

As a ``Backbone`` the model is its image tower: ``forward_features`` gives the projected image
embeddings (N, E), the space the text tower shares, so ``fit`` can put a probe on them like on any
image backbone; the text tower is frozen and reached through ``encode_text`` (zero-shot:
``headstart.zeroshot``). Two sources:

- ``hf:<id or dir>`` whose config is a CLIP or SigLIP model (transformers ``CLIPModel`` /
  ``SiglipModel``, with the checkpoint's tokenizer and image processor);
- ``open_clip:<arch>/<pretrained tag>`` (``open_clip:ViT-B-32/laion2b_s34b_b79k``), or open_clip's
  own ``hf-hub:org/repo`` / ``local-dir:/path`` schemas; open-clip-torch is an optional extra
  (``pip install 'headstart[clip]'``).

Preprocessing comes from the checkpoint (size, mean/std, interpolation); images are resized on
the shorter side and centre-cropped, CLIP's own eval transform (SigLIP's processor squashes to
a square instead: the same for square images).
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from headstart.backbones._base import IMAGE, Backbone, PretrainedCfg, block_layer_groups

DUAL_MODEL_TYPES = ("clip", "siglip")  # transformers model types read as dual encoders
_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}  # PIL codes the image processors store


class DualEncoder(Backbone):
    """An image tower (the backbone's features) plus a frozen text tower into the same space."""

    def __init__(self, model: nn.Module, vision: nn.Module, spec: str) -> None:
        super().__init__()
        self.model = model
        self.spec = spec
        self._vision = (vision,)  # a view into ``model``, kept out of the module tree
        for name, p in model.named_parameters():  # the text tower never trains: only its prompts are read
            if not name.startswith(self._vision_prefixes()):
                p.requires_grad_(False)

    def _vision_prefixes(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _text(self, texts: list[str], device: torch.device) -> torch.Tensor:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, S, S) -> (N, E)
        return self._image(x)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """(P, E) float32 text embeddings on the CPU (not normalised), in the image features' space."""
        was = self.training
        self.eval()
        device = next(self.model.parameters()).device
        out = [self._text(list(texts[i:i + batch_size]), device).float().cpu() for i in range(0, len(texts), batch_size)]
        self.train(was)
        return torch.cat(out) if out else torch.empty(0, self.num_features)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The image tower's groups (patch embedding | each block | final norm + projection); the
        text tower's parameters join the first group (registered before the image tower) or the
        last (after it), so every parameter is in exactly one group. Training them is harmless:
        image features never reach the text tower, so it gets no gradient."""
        groups = block_layer_groups(self._vision[0])
        seen = {id(p) for g in groups for p in g}
        order = list(self.model.parameters())
        start = min(i for i, p in enumerate(order) if id(p) in seen)
        groups[0] = [p for p in order[:start] if id(p) not in seen] + groups[0]
        groups[-1] = groups[-1] + [p for p in order[start:] if id(p) not in seen]
        return groups


def _out(o: Any) -> torch.Tensor:
    """transformers 5 returns the projected embeddings as ``pooler_output``; 4.x a tensor."""
    return o if isinstance(o, torch.Tensor) else o.pooler_output


def _side(size: Any) -> int | None:
    for key in ("height", "shortest_edge"):
        v = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        if v:
            return int(v)
    return None


class HFDualEncoder(DualEncoder):
    """transformers ``CLIPModel`` / ``SiglipModel`` with its tokenizer and image processor."""

    def __init__(self, model: nn.Module, tokenizer: Any, image_processor: Any, spec: str,
                 license: str = "see model card") -> None:
        super().__init__(model, model.vision_model, spec)
        self._tok, self.image_processor = tokenizer, image_processor
        self.siglip = model.config.model_type == "siglip"  # trained on texts padded to the full length
        ip = image_processor
        crop = getattr(ip, "crop_size", None) if getattr(ip, "do_center_crop", False) else None
        size = _side(crop) if crop else _side(getattr(ip, "size", None) or {})
        self.pretrained_cfg = PretrainedCfg(
            modality=IMAGE, source=spec, license=license, input_size=int(size or model.config.vision_config.image_size),
            mean=tuple(float(v) for v in ip.image_mean), std=tuple(float(v) for v in ip.image_std),
            interpolation=_RESAMPLE.get(int(getattr(ip, "resample", 3)), "bicubic"), fixed_input_size=True,
            max_length=int(model.config.text_config.max_position_embeddings))
        cfg = model.config
        self.num_features = int(getattr(cfg, "projection_dim", None) or cfg.vision_config.hidden_size)

    def _vision_prefixes(self) -> tuple[str, ...]:
        return ("vision_model.", "visual_projection.")

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        return _out(self.model.get_image_features(pixel_values=x))

    def _text(self, texts: list[str], device: torch.device) -> torch.Tensor:
        enc = self._tok(texts, padding="max_length" if self.siglip else True, truncation=True,
                        max_length=self.pretrained_cfg.max_length, return_tensors="pt")
        enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        return _out(self.model.get_text_features(**enc))

    def save_architecture(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.model.config.save_pretrained(directory)
        self._tok.save_pretrained(directory)
        self.image_processor.save_pretrained(directory)
        self.write_config(directory, "hf", ".")


def hf_dual_encoder(name_or_path: str | Path, config: Any, pretrained: bool = True, spec: str | None = None,
                    license: str = "see model card") -> HFDualEncoder:
    """A CLIP / SigLIP checkpoint (hub id or directory) with its tokenizer and image processor."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(name_or_path))
    ip = AutoImageProcessor.from_pretrained(str(name_or_path))
    model = AutoModel.from_pretrained(str(name_or_path)) if pretrained else AutoModel.from_config(config)
    return HFDualEncoder(model, tok, ip, spec or f"hf:{name_or_path}", license=license)


# -- open_clip ------------------------------------------------------------------------------
OPEN_CLIP_CONFIG = "open_clip_config.json"


def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError:
        raise ImportError("open_clip: specs need open-clip-torch (pip install 'headstart[clip]' or "
                          "pip install open-clip-torch)") from None
    return open_clip


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """open_clip warns on the root logger when it builds a model without weights (as a bundle
    rebuilds the architecture before loading its own): noise, not news."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def split_open_clip(name: str) -> tuple[str, str | None]:
    """``ViT-B-32/laion2b_s34b_b79k`` -> (arch, tag); ``hf-hub:..`` / ``local-dir:..`` -> (name, None)."""
    if name.startswith(("hf-hub:", "local-dir:")):
        return name, None
    arch, _, tag = name.partition("/")
    return arch, tag or None


class OpenClipEncoder(DualEncoder):
    """An open_clip model: ``encode_image`` / ``encode_text`` and its tokenizer."""

    def __init__(self, model: nn.Module, tokenizer: Any, spec: str, arch: str) -> None:
        super().__init__(model, model.visual, spec)
        self._tokenize, self.arch = tokenizer, arch
        pp = _open_clip().get_model_preprocess_cfg(model)
        size = pp.get("size", 224)
        self.pretrained_cfg = PretrainedCfg(
            modality=IMAGE, source=spec, license="see the pretrained tag's model card",
            input_size=int(size[0] if isinstance(size, (tuple, list)) else size),
            mean=tuple(pp.get("mean", (0.48145466, 0.4578275, 0.40821073))),
            std=tuple(pp.get("std", (0.26862954, 0.26130258, 0.27577711))),
            interpolation=str(pp.get("interpolation", "bicubic")), fixed_input_size=True,
            max_length=int(getattr(tokenizer, "context_length", 77)))
        s = self.pretrained_cfg.input_size
        with torch.no_grad():  # the embedding width: open_clip's towers name it differently
            self.num_features = int(getattr(model.visual, "output_dim", 0) or self._image(torch.zeros(1, 3, s, s)).shape[1])

    def _vision_prefixes(self) -> tuple[str, ...]:
        return ("visual.",)

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x)

    def _text(self, texts: list[str], device: torch.device) -> torch.Tensor:
        return self.model.encode_text(self._tokenize(texts).to(device))

    def save_architecture(self, directory: Path) -> None:
        """``open_clip_config.json`` (architecture + preprocessing) beside ``backbone.json``: the
        bundle rebuilds the model from its own folder, whatever the spec named."""
        directory.mkdir(parents=True, exist_ok=True)
        oc = _open_clip()
        cfg = oc.get_model_config(self.arch)
        if cfg is None:
            raise ValueError(f"{self.spec}: open_clip has no config for {self.arch!r} to save")
        pp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in oc.get_model_preprocess_cfg(self.model).items()}
        (directory / OPEN_CLIP_CONFIG).write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": pp}, indent=2))
        self.write_config(directory, "open_clip", "local-dir:.")


def open_clip_encoder(name: str, pretrained: bool = True, spec: str | None = None) -> OpenClipEncoder:
    """``ViT-B-32/laion2b_s34b_b79k`` (arch/tag), ``hf-hub:org/repo`` or ``local-dir:/path``;
    ``pretrained=False`` builds the architecture with random weights."""
    oc = _open_clip()
    arch, tag = split_open_clip(name)
    if pretrained and tag is None and not arch.startswith(("hf-hub:", "local-dir:")):
        tags = ", ".join(oc.list_pretrained_tags_by_model(arch)[:6]) or "none known"
        raise ValueError(f"open_clip:{name}: name the pretrained weights, open_clip:{arch}/TAG (tags: {tags}); "
                         f"scratch:open_clip:{arch} for random weights")
    with _quiet_root_logger():
        model = oc.create_model(arch, pretrained=tag if pretrained else None, load_weights=pretrained)
    return OpenClipEncoder(model.eval(), oc.get_tokenizer(arch), spec or f"open_clip:{name}", arch)


def load_open_clip_dir(directory: Path, pretrained: bool = False) -> OpenClipEncoder:
    """Rebuild a saved open_clip backbone (``save_architecture``) from its own folder."""
    return open_clip_encoder(f"local-dir:{Path(directory).resolve()}", pretrained=pretrained)


def build(name: str, pretrained: bool = True) -> Backbone:
    """The ``open_clip:`` source."""
    return open_clip_encoder(name, pretrained=pretrained)
