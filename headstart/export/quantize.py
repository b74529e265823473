"""int8 ONNX next to the fp32 export, with onnxruntime's maintained quantizer.

``headstart export BUNDLE --format onnx --int8 --out DIR`` writes ``DIR/model.onnx`` (fp32, kept
for reference and parity) and ``DIR/model.int8.onnx``; ``export.json`` then names the int8 file
under ``"file"`` (what predict.py runs) and says how it was quantized under ``"quantization"``.

- text (transformers): dynamic quantization (``quantize_dynamic``): the weights of MatMul and
  embedding (Gather) nodes stored as int8 per channel, their activations quantized at run time;
  needs no calibration data. Activation-by-activation MatMuls (attention scores) stay float:
  quantizing them too cost 2-6 points of argmax agreement on a MiniLM probe (Rotten Tomatoes).
- images (CNNs): static QDQ quantization (``quantize_static``), weights int8 per channel and
  activations uint8 with ranges calibrated (min/max) on a few prepared inputs; the head (Gemm)
  stays float (quantizing it with int8 activations gave 62-66% agreement on Fashion-MNIST). Dynamic
  quantization of Conv (ConvInteger) is usually slower than float on CPU, so it is not used.

onnxruntime writes its scratch models into a temporary folder, never into the working directory.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from headstart.data._base import LabeledData
from headstart.export.onnx import Parity, _batches, _feeds, _random_inputs, check_parity

INT8_FILE = "model.int8.onnx"
DYNAMIC_OPS = ["MatMul", "Gather"]


class _Reader:
    """onnxruntime's CalibrationDataReader protocol: one feed dict per call, then None."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # not used by MinMax calibration; part of the protocol
        raise NotImplementedError


def _calibration_feeds(est: Any, calibration: LabeledData | None, n: int) -> tuple[list[dict[str, np.ndarray]], str]:
    if calibration is not None and len(calibration):
        batches = _batches(est, calibration, n)
        return [_feeds(x) for x in batches], f"{min(n, len(calibration))} given inputs"
    return [_feeds(x) for x in _random_inputs(est)], "8 random inputs (give calibration data for real ranges)"


def _nodes(path: Path, ops: tuple[str, ...], with_weight: bool = False) -> list[str]:
    """Names of the ``ops`` nodes (``with_weight``: only those reading a stored weight, not two activations)."""
    import onnx

    graph = onnx.load(str(path)).graph
    weights = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type in ops and (not with_weight or any(i in weights for i in n.input))]


def quantize_file(est: Any, fp32: Path, out: Path, calibration: LabeledData | None = None,
                  n_calibration: int = 64) -> dict[str, Any]:
    """Write the int8 version of ``fp32`` to ``out``; return what was done (for the metadata)."""
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    info: dict[str, Any] = {"weights": "int8", "tool": f"onnxruntime {onnxruntime.__version__}", "source": fp32.name}
    with tempfile.TemporaryDirectory(prefix="headstart-int8-") as tmp:
        scratch = Path(tmp) / out.name
        if est.modality_ == "image":
            feeds, where = _calibration_feeds(est, calibration, n_calibration)
            quantize_static(str(fp32), str(scratch), _Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=_nodes(fp32, ("Gemm",)), calibrate_method=CalibrationMethod.MinMax)
            info.update(method="static QDQ (quantize_static): int8 weights per channel, uint8 activations; "
                               "the head (Gemm) stays float",
                        calibration=f"min/max on {where}")
        else:
            quantize_dynamic(str(fp32), str(scratch), op_types_to_quantize=DYNAMIC_OPS, per_channel=True,
                             nodes_to_quantize=_nodes(fp32, tuple(DYNAMIC_OPS), True), weight_type=QuantType.QInt8)
            info.update(method=f"dynamic (quantize_dynamic): int8 per-channel weights of {'/'.join(DYNAMIC_OPS)} "
                               "nodes with a weight, activations quantized at run time", calibration="none needed")
        out.write_bytes(scratch.read_bytes())
    return info


def quantize_export(est: Any, folder: str | Path, data: LabeledData | None = None,
                    calibration: LabeledData | None = None) -> tuple[Path, Parity]:
    """Add ``model.int8.onnx`` to a folder written by ``export_onnx``, record it in export.json
    and the file's metadata, and check it against the bundle on ``data`` (max |Δ|, argmax
    agreement). Images are calibrated on ``calibration`` (default: the first 64 of ``data``)."""
    import onnx

    folder = Path(folder)
    fp32, path = folder / "model.onnx", folder / INT8_FILE
    if not fp32.is_file():
        raise FileNotFoundError(f"{fp32} missing: export the fp32 model first (export_onnx)")
    meta = json.loads((folder / "export.json").read_text())
    meta["quantization"] = quantize_file(est, fp32, path, calibration if calibration is not None else data)
    meta["file"] = INT8_FILE
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"headstart": json.dumps(meta)})
    onnx.save(proto, str(path))
    (folder / "export.json").write_text(json.dumps(meta, indent=2))
    return path, check_parity(est, path, data)
