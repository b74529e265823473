"""``headstart export BUNDLE --format onnx --out DIR``: the bundle's model (backbone + head, inputs
to the head's outputs) as ``DIR/model.onnx`` with a dynamic batch axis (and sequence axis for
text), ``DIR/export.json`` saying how to prepare inputs and read outputs (also stored in the ONNX
file's metadata), the tokenizer for text models, and ``DIR/predict.py``, a script that runs it
with onnxruntime + numpy + pillow only. A parity check runs the exported file with onnxruntime
against the PyTorch bundle on the same prepared inputs: max |Δ| and argmax agreement."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from headstart.data._base import LabeledData
from headstart.data.loaders import make_loader

OPSET = 18


class _Logits(nn.Module):
    """Image: (N, 3, S, S) normalised pixels -> (N, C) head outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels).logits


class _TextLogits(_Logits):
    """Text: token ids and attention mask (N, T) -> (N, C) head outputs."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.model({"input_ids": input_ids, "attention_mask": attention_mask}).logits


@dataclass
class Parity:
    """The exported model against the bundle on the same inputs."""

    n: int
    max_abs_diff: float
    argmax_agreement: float
    real_inputs: bool

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "max_abs_diff": self.max_abs_diff, "argmax_agreement": self.argmax_agreement,
                "inputs": "real" if self.real_inputs else "random"}

    def format(self) -> str:
        where = "real inputs" if self.real_inputs else "random inputs (give --data for real ones)"
        return (f"parity on {self.n} {where}: max |logit difference| {self.max_abs_diff:.2e}, "
                f"argmax agreement {100 * self.argmax_agreement:.2f}%")


def export_metadata(est: Any) -> dict[str, Any]:
    """How to prepare inputs and read outputs, for a runtime that knows nothing of headstart."""
    cfg = est.model_.backbone.pretrained_cfg
    task = est.task_.state()
    meta: dict[str, Any] = {"format": "onnx", "modality": est.modality_, "task": task,
                            "classes": [str(c) for c in est.classes_] if est.classes_ is not None else [],
                            "outputs": {"softmax": "class probabilities = softmax(logits)",
                                        "sigmoid": "label probabilities = sigmoid(logits); a label is on when its "
                                                   "probability >= task.thresholds"}.get(
                                est.task_.proba, "regression: value = logits[:, 0] * task.scale + task.mean; "
                                                 "multitask: see task.tasks"),
                            "backbone": est.model_.backbone.spec, "licence": cfg.license}
    if est.modality_ == "image":
        meta["inputs"] = {"name": "pixels", "shape": ["batch", 3, cfg.input_size, cfg.input_size], "dtype": "float32",
                          "steps": ["decode as RGB (EXIF orientation applied)",
                                    f"resize the shorter side to {cfg.input_size} ({cfg.interpolation})",
                                    f"centre-crop {cfg.input_size}x{cfg.input_size}", "scale to [0, 1]",
                                    f"normalise: (x - mean) / std, mean {list(cfg.mean)}, std {list(cfg.std)}",
                                    "channels first (N, 3, H, W)"],
                          "size": cfg.input_size, "interpolation": cfg.interpolation,
                          "mean": list(cfg.mean), "std": list(cfg.std)}
    else:
        meta["inputs"] = {"names": ["input_ids", "attention_mask"], "shape": ["batch", "tokens"], "dtype": "int64",
                          "steps": ["tokenize with tokenizer/ (truncation)", f"max {cfg.max_length} tokens",
                                    "pad to the longest in the batch; attention_mask 1 on real tokens"],
                          "max_length": cfg.max_length, "tokenizer": "tokenizer/"}
    return meta


def _batches(est: Any, data: LabeledData, n: int, batch_size: int = 16) -> Any:
    bb = est.model_.backbone
    loader = make_loader(data.subset(range(min(n, len(data)))), None, bb.pretrained_cfg, bb.tokenizer(),
                         train=False, batch_size=batch_size)
    return [b["inputs"] for b in loader]


def _random_inputs(est: Any) -> list[Any]:
    cfg = est.model_.backbone.pretrained_cfg
    g = torch.Generator().manual_seed(0)
    if est.modality_ == "image":
        return [torch.randn(8, 3, cfg.input_size, cfg.input_size, generator=g)]
    vocab = int(getattr(est.model_.backbone.tokenizer(), "vocab_size", 1000))
    ids = torch.randint(0, vocab, (8, 24), generator=g)
    mask = torch.ones_like(ids)
    mask[4:, 16:] = 0
    return [{"input_ids": ids, "attention_mask": mask}]


def _feeds(x: Any) -> dict[str, np.ndarray]:
    if isinstance(x, dict):
        return {k: v.numpy().astype(np.int64) for k, v in x.items() if k in ("input_ids", "attention_mask")}
    return {"pixels": x.numpy().astype(np.float32)}


def check_parity(est: Any, path: Path, data: LabeledData | None = None, n: int = 256) -> Parity:
    """Run ``path`` with onnxruntime and the bundle with PyTorch on the same prepared inputs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batches = _batches(est, data, n) if data is not None and len(data) else _random_inputs(est)
    model = est.model_.eval()
    diffs, agree, total = [], 0, 0
    for x in batches:
        with torch.inference_mode():
            ref = model(x).logits.float().numpy()
        got = sess.run(None, _feeds(x))[0]
        diffs.append(float(np.abs(got - ref).max()))
        agree += int((got.argmax(1) == ref.argmax(1)).sum())
        total += len(ref)
    return Parity(total, max(diffs), agree / total, data is not None)


def export_onnx(est: Any, out: str | Path, data: LabeledData | None = None,
                source: str | Path | None = None) -> tuple[Path, Parity]:
    """Write ``out/model.onnx`` (+ export.json, tokenizer/, predict.py; headstart.json and README.md
    so ``headstart.load`` reads the folder, lineage from ``source``, the bundle) and check its parity."""
    import onnx

    from headstart.export.onnx_model import write_onnx_meta

    if est.model_.backbone.spec.startswith("tfidf"):
        raise ValueError("a TF-IDF model is scikit-learn, not a network: ONNX export covers neural backbones only")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = est.model_.eval().cpu()
    example = _random_inputs(est)[0]
    batch = torch.export.Dim("batch", min=1)
    if est.modality_ == "image":
        wrapper, args, names = _Logits(model), (example,), ["pixels"]
        shapes: Any = {"pixels": {0: batch}}
    else:
        tokens = torch.export.Dim("tokens", min=2, max=est.model_.backbone.pretrained_cfg.max_length)
        wrapper, args, names = _TextLogits(model), (example["input_ids"], example["attention_mask"]), [
            "input_ids", "attention_mask"]
        shapes = {"input_ids": {0: batch, 1: tokens}, "attention_mask": {0: batch, 1: tokens}}
        est.model_.backbone.tokenizer().save_pretrained(str(out / "tokenizer"))
    path = out / "model.onnx"
    wrapper.eval()
    torch.onnx.export(wrapper, args, str(path), input_names=names, output_names=["logits"], dynamic_shapes=shapes,
                      dynamo=True, opset_version=OPSET, external_data=False, verbose=False)
    meta = export_metadata(est)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"headstart": json.dumps(meta)})
    onnx.save(proto, str(path))
    (out / "export.json").write_text(json.dumps(meta, indent=2))
    shutil.copyfile(Path(__file__).with_name("onnx_predict.py"), out / "predict.py")
    parity = check_parity(est, path, data)
    write_onnx_meta(out, est.bundle_meta(), path.name, {
        "step": "onnx", "from": str(source) if source is not None else "an estimator in memory (not saved)",
        "tool": f"torch.onnx (dynamo) opset {OPSET}", "method": "fp32 export, dynamic batch axis",
        "parity": parity.to_dict()})
    return path, parity
