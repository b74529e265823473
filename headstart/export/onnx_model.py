"""An ONNX folder (``headstart export`` / ``headstart compress --steps int8``) that ``headstart.load``
returns like any bundle. Its ``headstart.json`` is the source bundle's metadata (preprocessing,
task, labels) plus ``"format": "onnx"``, the file to run, its SHA-256 and the lineage (source
bundle, export, quantization settings, parity) under ``compression``; ``README.md`` is the model
card written from it. Loaded, the estimator prepares inputs with headstart's own data code (the
same loaders as the PyTorch bundle) and ``OnnxModule`` runs the file with onnxruntime in place of
the network, so predict / predict_proba / evaluate / the CLI work unchanged."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart._files import sha256_file
from headstart.data.config import PretrainedCfg
from headstart.export.bundle import META, load_bundle, versions
from headstart.export.card import model_card
from headstart.model import ModelOutput

ONNX_FORMAT = "onnx"


class OnnxBackbone:
    """What the estimator reads from a backbone to prepare inputs: spec, preprocessing and (text)
    the tokenizer saved in the folder."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.spec = meta["backbone"]["spec"]
        self.num_features = int(meta["backbone"].get("num_features", 0))
        self.pretrained_cfg = PretrainedCfg.from_dict(meta["backbone"]["pretrained_cfg"])
        self._folder = folder
        self._tok: Any = None

    def tokenizer(self) -> Any:
        if self.pretrained_cfg.modality != "text":
            return None
        if self._tok is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(str(self._folder / "tokenizer"))
        return self._tok


class OnnxModule(nn.Module):
    """Prepared inputs -> ``ModelOutput`` through an onnxruntime session (CPU). It has no
    features (an input-shift check needs the PyTorch bundle) and one empty parameter, so the
    estimator's ``next(model.parameters()).device`` finds where outputs go."""

    def __init__(self, path: Path, backbone: OnnxBackbone) -> None:
        import onnxruntime as ort

        super().__init__()
        self.backbone = backbone
        self.path = path
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, inputs: Any) -> ModelOutput:  # pixels (N, 3, S, S) or {input_ids, attention_mask} (N, T)
        if isinstance(inputs, dict):
            feeds = {k: v.cpu().numpy().astype(np.int64) for k, v in inputs.items() if k in self.input_names}
        else:
            feeds = {"pixels": inputs.float().cpu().numpy()}
        logits = torch.from_numpy(self.session.run(None, feeds)[0]).to(self.anchor.device)  # (N, C)
        return ModelOutput(logits.new_zeros(len(logits), 0), logits)


def is_onnx_folder(directory: str | Path) -> bool:
    """Whether ``directory`` holds an ONNX model (headstart.json says ``"format": "onnx"``, or an
    older export with export.json only)."""
    d = Path(directory)
    if (d / META).is_file():
        try:
            return json.loads((d / META).read_text()).get("format") == ONNX_FORMAT
        except json.JSONDecodeError:
            return False  # load_bundle names the corrupt file
    return (d / "export.json").is_file()


def load_onnx_folder(directory: str | Path) -> tuple[OnnxModule, dict[str, Any]]:
    """(the module running the folder's ONNX file, headstart.json), the file checked against its hash."""
    d = Path(directory)
    if not (d / META).is_file():
        raise FileNotFoundError(f"{d}: an ONNX export without {META} (written before exports carried one); "
                                "export the bundle again (headstart export / compress) to load it in headstart, "
                                "or run its predict.py")
    meta = json.loads((d / META).read_text())
    path = d / meta["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing ({META} names it)")
    expected = meta.get("files", {}).get(meta["file"])
    if expected and sha256_file(path) != expected:
        raise ValueError(f"{path}: SHA-256 does not match {META}; the file is corrupt or was modified")
    return OnnxModule(path, OnnxBackbone(d, meta)), meta


def load_model(directory: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """A bundle's model, or an ONNX folder's (``OnnxModule``), with its metadata."""
    return load_onnx_folder(directory) if is_onnx_folder(directory) else load_bundle(directory)


def write_onnx_meta(folder: Path, meta: dict[str, Any], file: str, step: dict[str, Any]) -> dict[str, Any]:
    """headstart.json and README.md of an ONNX folder: ``meta`` (the source's, or the folder's
    own for a further step) with ``file`` as the model to run and ``step`` appended to the lineage."""
    meta = {k: v for k, v in meta.items() if k != "reference"}  # no features come out of the ONNX file
    comp = dict(meta.get("compression") or {})
    if "from" in step:
        comp.setdefault("source", step["from"])
    metrics = dict(meta.get("metrics") or {})
    if "before_compression" not in metrics:  # the source's held-out metrics do not describe this file
        metrics = {**{k: v for k, v in metrics.items() if k not in ("test", "val")},
                   "before_compression": {k: v for k, v in metrics.items() if k in ("test", "val")}}
    meta.update(format=ONNX_FORMAT, file=file, metrics=metrics, versions=versions(),
                files={file: sha256_file(folder / file)},
                compression={**comp, "steps": [*comp.get("steps", []), step]})
    (folder / META).write_text(json.dumps(meta, indent=2, default=str))
    (folder / "README.md").write_text(model_card(meta))
    return meta
