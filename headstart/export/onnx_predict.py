"""Run a model exported by ``headstart export --format onnx`` with onnxruntime, numpy and pillow
only (headstart and torch need not be installed); text models also need ``tokenizers``.

    python predict.py IMAGE_OR_TEXT [...] [--model DIR]   # prints one JSON record per input

This file is copied next to model.onnx and export.json; it reads them from its own folder."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _image(path: str, spec: dict) -> np.ndarray:
    from PIL import Image, ImageOps

    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    img = img.convert("RGB")
    size = int(spec["size"])
    w, h = img.size
    scale = size / min(w, h)
    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}.get(
        spec.get("interpolation", "bilinear"), Image.BILINEAR)
    # as torchvision's Resize(size): the shorter side becomes size, the longer int(size * long / short)
    img = img.resize((size if w <= h else int(w * scale), size if h <= w else int(h * scale)), resample)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    x = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    x = (x - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
    return x.transpose(2, 0, 1)


def _texts(texts: list[str], spec: dict, folder: Path) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / spec["tokenizer"] / "tokenizer.json"))
    tok.enable_truncation(int(spec["max_length"]))
    tok.enable_padding()
    enc = tok.encode_batch(texts)
    return {"input_ids": np.asarray([e.ids for e in enc], np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in enc], np.int64)}


def records(logits: np.ndarray, meta: dict) -> list[dict]:
    """Labels and probabilities from the outputs, as export.json says."""
    task, classes = meta["task"], meta["classes"]
    out = []
    if task["name"] in ("multilabel",):
        p = 1 / (1 + np.exp(-logits))
        on = p >= np.asarray(task["thresholds"])
        for row, o in zip(p, on):
            out.append({"labels": [c for c, k in zip(classes, o) if k], "probabilities": dict(zip(classes, row.tolist()))})
    elif classes:
        z = np.exp(logits - logits.max(1, keepdims=True))
        p = z / z.sum(1, keepdims=True)
        for row in p:
            out.append({"label": classes[int(row.argmax())], "probabilities": dict(zip(classes, row.tolist()))})
    else:
        out = [{"value": float(v) * task["scale"] + task["mean"]} for v in logits[:, 0]]
    return out


def predict(inputs: list[str], folder: Path = HERE) -> list[dict]:
    import onnxruntime as ort

    meta = json.loads((folder / "export.json").read_text())
    sess = ort.InferenceSession(str(folder / meta.get("file", "model.onnx")), providers=["CPUExecutionProvider"])
    if meta["modality"] == "image":
        feeds = {"pixels": np.stack([_image(p, meta["inputs"]) for p in inputs])}
    else:
        feeds = _texts(inputs, meta["inputs"], folder)
    return records(sess.run(None, feeds)[0], meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--model", type=Path, default=HERE, help="folder with export.json and the model it names (model.onnx or model.int8.onnx)")
    args = ap.parse_args()
    for item, rec in zip(args.inputs, predict(args.inputs, args.model)):
        sys.stdout.write(json.dumps({"input": item, **rec}) + "\n")


if __name__ == "__main__":
    main()
