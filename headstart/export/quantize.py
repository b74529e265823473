"""int8 ONNX next to the fp32 export, with onnxruntime's maintained quantizer.

``headstart export BUNDLE --format onnx --int8 --out DIR`` writes ``DIR/model.onnx`` (fp32, kept
for reference and parity) and ``DIR/model.int8.onnx``; ``export.json`` then names the int8 file
under ``"file"`` (what predict.py runs) and says how it was quantized under ``"quantization"``.

- text (transformers): dynamic quantization (``quantize_dynamic``): the weights of the MatMul
  nodes that read a stored weight as int8 per channel; their inputs quantized at run time with
  ONE SCALE PER TOKEN (``headstart.export.per_token``) instead of onnxruntime's one scale for the
  whole padded batch; embedding tables (Gather) stored as float16. Activation-by-activation
  MatMuls (attention scores) stay float. On a MiniLM probe (Rotten Tomatoes, 1000 training-pool
  texts outside the fit; argmax agreement with fp32 at batch 32): per-tensor int8 with int8
  embeddings 96.3%, per-token 98.9% (float embeddings) / 98.0% (int8) / 98.3% (float16); with
  int8 embeddings, keeping the 3 or 6 MatMuls whose int8 moved the logits most float (a
  one-at-a-time sweep on training texts: the feed-forward ones) gave 98.8% / 99.0%, not used:
  slower, and the names are model-specific. Then SmoothQuant (``headstart.export.smooth``, alpha
  0.7, activation ranges from 256 calibration inputs) before quantizing: 98.1% -> 99.0% on another
  1000 pool texts; skipped when no calibration inputs are given.
- images (CNNs): static QDQ quantization (``quantize_static``), weights int8 per channel and
  activations uint8 with ranges calibrated (min/max) on 64 prepared training inputs. On the same
  inputs first: the Conv weights are rounded by GPTQ (``headstart.export.gptq``: column by column,
  each rounding error moved onto the columns not yet rounded so the layer's output moves least;
  the scales go to ``quantize_static`` as overrides so it stores those integers), then each Conv
  bias is corrected for the mean shift the rounding leaves (``headstart.export.bias_correction``:
  minus ``(Wq - W) · E[x]``). The head (Gemm) and the first 6 convolutions (at most an eighth of
  them; the high-resolution ones, whose int8 errors travel through the whole network) stay float
  (quantizing the head with int8 activations gave 62-66% agreement on Fashion-MNIST).
  Measured on an EfficientNet-Lite0 probe (Fashion-MNIST, 112 px, N=500; argmax agreement with
  fp32 on 2000 training-pool images outside the fit and the calibration images, batch 32):
  plain min/max 94.75%; bias correction 96.80%; and the input conv float 97.70% (no measurable
  speed cost); and GPTQ 97.85% (256 calibration inputs 97.90%); the first 3 / 4 / 5 / 6 convs
  float 98.35 / 98.65 / 99.00 / 98.80% (6 is the default: speed-up over fp32 at batch 1 / 32,
  one thread, load ~3, noisy: 3 convs 2.1-2.4x / 2.1-2.4x, 5: 1.8-1.9x / 1.5-1.6x, 6: 2.1x /
  2.0x; with 5 the float/int8 boundary falls inside a block). What limits it: with
  float activations, the int8 rounding of the weights alone gives 95.8% (nearest), 98.2% (nearest
  and bias correction), 99.3% (GPTQ and bias correction) on the first 1000 of those images, and the
  uint8 activations (int16 weights) alone 98.3%; the first 7 of the 49 convolutions, int8 alone,
  cost as much as all of them. The fp32 probe has 2.8% of the 2000 pool images with a top-2 logit
  margin under 0.1, 14.8% under 0.5, where the default int8 model's largest logit error per image
  has median 0.087 (2.45% of the images have a margin below it); 23 of its 24 flips have a margin
  under 0.25. Tried, on the first 1000
  (plain min/max: 94.4%): 512 calibration images 94.3%; percentile (99.999) 95.2%; entropy 94.7%
  (on the first 7 convs); symmetric int8 activations 94.9%; uint16 activations (int8 weights) 95.7%;
  int16 weights (uint8 activations) 98.3% (no int8 kernel: as slow as float); ``quant_pre_process``
  first 94.4% (the export has no BatchNorm left, and onnxruntime already folds each Clip into the
  preceding Q/DQ range); depthwise and first convolutions float 88.7%; the last 1 or 3
  convolutions float 95.1% / 94.7%; on 2000 after bias correction and the input conv float:
  percentile 97.35%, calibration on other pool images 97.00%, moving-average min/max 96.85%; after
  GPTQ: percentile 97.90%, 256 calibration inputs for the ranges 97.95%, moving average 98.00%;
  GPTQ without the scale overrides (onnxruntime re-rounds the channels whose largest weight moved)
  97.8-98.35%, GPTQ keeping each channel's largest weight fixed instead 98.0% (1000); re-measured
  mean shifts of every conv output of the int8 model subtracted iteratively (empirical bias
  correction) diverged (97.1% -> 84.5%, damped 96.8%); the features' mean shift folded into the
  head's bias +0.1; a ridge re-fit of the head on int8 features overfitted (77-91%). Dynamic
  quantization of Conv (ConvInteger) is usually slower than float on CPU.
  Why 99.5% is out of reach with uint8 activations (the same 2000 pool images, default 98.80%,
  median max |Δlogit| 0.087): int8 GPTQ weights with uint16 activations give 99.60% (0.035),
  uint8 activations with int16 weights 98.90% (0.085); uint16 on the 24 linear residual-stream
  tensors (projection outputs and Adds, rounding error ~37 dB below the signal where the ReLU6
  tensors are ~47 dB) 99.45% (0.050), on the 29 ReLU6 tensors 98.85%; the logit errors would have to
  be 0.3-0.4x as large for 99.5% (scaling the measured errors). The error is noise with no mean
  to correct: the same int8 file run by onnxruntime with graph optimizations off agrees with itself
  on 99.3% (median 0.061). Also tried on the pool: quantization-aware distillation of the Conv
  weights and biases toward the fp32 logits through a PyTorch copy of the QDQ graph (fake
  quantization with the file's scales, straight-through rounding; 500 fit or 2000 pool images,
  Adam 3e-4 to 2e-2, MSE or Huber): 97.65-98.90%, its training loss did not fall below the start's;
  range equalisation of expansion -> ReLU6 -> depthwise pairs 98.80%; per-channel equalisation of
  the residual streams (exact in float) 98.75%; a ridge re-fit of the head toward the fp32 logits
  on int8 features of 500 / 6000 pool images 98.85 / 99.00%; the last 2 / 6 / 22 convs float as well
  98.95 / 99.15 / 99.40%, the first 12 / 27 98.65 / 98.75%. What reaches ~99.4% costs the speed:
  best of 3 (chrt, load ~2, batch 1 / 32) default 2.75x / 1.68x, first 6 and last 22 float 1.36x /
  1.02x, uint16 residual stream 0.70x / 0.60x (no uint16 Conv kernel).

Other engines and schemes, measured against these files in one run (``benchmarks/int8_routes.py``,
2000 pool items, one thread): OpenVINO runs the same int8 files with about the same agreement
(images 98.90%, text 98.70%), about as fast as onnxruntime on images and slower on text (batch 32:
images 5.5x the bundle against 5.3x; text 0.62x against 0.83x); on text, torchao's per-token int8
(eager) and a torch._int_mm per-token W8A8 reach 98.45 / 98.40% at 0.73x / 1.23x at batch 32; int8
weights with float activations agree 99.4% (images) / 99.5% (text) but compute in float. None is adopted.

onnxruntime writes its scratch models into a temporary folder, never into the working directory.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from headstart.data._base import LabeledData
from headstart.export.bias_correction import correct_conv_biases
from headstart.export.bundle import META
from headstart.export.gptq import gptq_conv_weights, scale_overrides
from headstart.export.onnx_model import write_onnx_meta
from headstart.export.per_token import half_embeddings, per_token_activations
from headstart.export.smooth import smooth
from headstart.export.onnx import Parity, _batches, _feeds, _random_inputs, check_parity

INT8_FILE = "model.int8.onnx"
# chosen on 2000 Fashion-MNIST training images outside the fit's 500 (argmax agreement with fp32)
IMAGE_DEFAULTS: dict[str, Any] = {"calibration": "MinMax", "n_calibration": 64, "bias_correction": True,
                                  "gptq": True, "float_first_convs": 6}
# chosen on 1000 Rotten Tomatoes pool texts outside the fit and the calibration texts (MiniLM
# probe, agreement with fp32): no smoothing 98.1%, alpha 0.3 / 0.5 / 0.7 / 0.85: 98.3 / 97.9 / 99.0 / 98.8%
TEXT_DEFAULTS: dict[str, Any] = {"alpha": 0.7, "n_calibration": 256}


class _Reader:
    """onnxruntime's CalibrationDataReader protocol: one feed dict per call, then None."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # not used by MinMax calibration; part of the protocol
        raise NotImplementedError


def _calibration_feeds(est: Any, calibration: LabeledData | None,
                       n: int) -> tuple[list[dict[str, np.ndarray]], str, bool]:
    """(feeds, where they came from, whether they are real inputs)."""
    if calibration is not None and len(calibration):
        batches = _batches(est, calibration, n)
        return [_feeds(x) for x in batches], f"{min(n, len(calibration))} given inputs", True
    return [_feeds(x) for x in _random_inputs(est)], "8 random inputs (give calibration data for real ranges)", False


def _nodes(path: Path, ops: tuple[str, ...], with_weight: bool = False) -> list[str]:
    """Names of the ``ops`` nodes (``with_weight``: only those reading a stored weight, not two activations)."""
    import onnx

    graph = onnx.load(str(path)).graph
    weights = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type in ops and (not with_weight or any(i in weights for i in n.input))]


def _first_convs(path: Path, n: int) -> list[str]:
    """Names of the first ``n`` Conv nodes in graph order, but at most an eighth of them and at
    least the one reading the pixels: the early, high-resolution layers, where int8 costs most
    agreement (their errors travel through the whole network) and float costs least speed."""
    import onnx

    convs = [node.name for node in onnx.load(str(path)).graph.node if node.op_type == "Conv"]
    return convs[:min(n, max(1, len(convs) // 8))]


def _static(fp32: Path, out: Path, feeds: list[dict[str, np.ndarray]], where: str, real: bool) -> dict[str, Any]:
    """Images: static QDQ of Conv weights rounded by GPTQ, biases corrected for the rounding (both
    on ``real`` calibration inputs only), the head (Gemm) and the input convolution float;
    ``IMAGE_DEFAULTS`` say how."""
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    cfg = IMAGE_DEFAULTS
    src, corrected, rounding, extra = fp32, "none (no calibration inputs given)", "nearest", {}
    keep = _nodes(fp32, ("Gemm",)) + _first_convs(fp32, cfg["float_first_convs"])
    if real and (cfg["bias_correction"] or cfg["gptq"]):
        proto = onnx.load(str(fp32))
        rounded, scales = gptq_conv_weights(proto, feeds, skip=tuple(keep)) if cfg["gptq"] else ({}, {})
        if cfg["bias_correction"]:
            n = correct_conv_biases(proto, feeds, skip=tuple(keep), rounded=rounded)
            corrected = f"{n} Conv biases: minus (Wq - W) · E[input] on {where} (headstart.export.bias_correction)"
        for t in proto.graph.initializer:
            if t.name in rounded:
                t.CopyFrom(numpy_helper.from_array(rounded[t.name], t.name))
        if rounded:
            rounding = f"GPTQ on {where}, {len(rounded)} Conv weights (headstart.export.gptq)"
            extra = {"TensorQuantOverrides": scale_overrides(scales)}
        src = out.with_name("prepared.onnx")
        onnx.save(proto, str(src))
    quantize_static(str(src), str(out), _Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=keep,
                    calibrate_method=getattr(CalibrationMethod, cfg["calibration"]), extra_options=extra)
    return {"method": "static QDQ (quantize_static): int8 weights per channel, uint8 activations; the head "
                      "(Gemm) and the first convolutions (under excluded) stay float",
            "calibration": f"{ {'MinMax': 'min/max'}.get(cfg['calibration'], cfg['calibration'].lower())} on {where}",
            "activations": "uint8 per tensor, ranges calibrated", "weight_rounding": rounding,
            "bias_correction": corrected, "excluded": keep}


def _dynamic(fp32: Path, out: Path, feeds: list[dict[str, np.ndarray]] | None, where: str) -> dict[str, Any]:
    """Text: SmoothQuant on the calibration ``feeds`` (none given: skipped), then dynamic int8
    MatMuls with per-token activation scales, embeddings float16."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, smoothing = fp32, "none (no calibration inputs given)"
    if feeds:
        proto = onnx.load(str(fp32))
        done = smooth(proto, feeds, TEXT_DEFAULTS["alpha"])
        src = out.with_name("smoothed.onnx")
        onnx.save(proto, str(src))
        smoothing = (f"SmoothQuant alpha {TEXT_DEFAULTS['alpha']} on {where} ({done['folded']} activations folded "
                     f"into their LayerNorm, {done['inserted']} by a Mul)")
    matmuls = _nodes(src, ("MatMul",), True)
    quantize_dynamic(str(src), str(out), op_types_to_quantize=["MatMul"], per_channel=True,
                     nodes_to_quantize=matmuls, weight_type=QuantType.QInt8)
    proto = onnx.load(str(out))
    n = per_token_activations(proto)
    tables = half_embeddings(proto)
    onnx.save(proto, str(out))
    return {"method": "dynamic (quantize_dynamic): int8 per-channel weights of the MatMul nodes with a weight; "
                      "their inputs quantized at run time with one scale per token (headstart.export.per_token)",
            "activations": f"int8 per token, symmetric ({n} MatMul inputs)", "smoothing": smoothing,
            "calibration": where if feeds else "none needed",
            "embeddings": f"float16, cast to float32 after the lookup ({', '.join(tables) or 'none'})",
            "excluded": [], "per_token": True}


def quantize_file(est: Any, fp32: Path, out: Path, calibration: LabeledData | None = None,
                  n_calibration: int | None = None) -> dict[str, Any]:
    """Write the int8 version of ``fp32`` to ``out``; return what was done (for the metadata)."""
    import onnxruntime

    info: dict[str, Any] = {"weights": "int8", "tool": f"onnxruntime {onnxruntime.__version__}", "source": fp32.name}
    with tempfile.TemporaryDirectory(prefix="headstart-int8-") as tmp:
        scratch = Path(tmp) / out.name
        if est.modality_ == "image":
            feeds, where, real = _calibration_feeds(est, calibration, n_calibration or IMAGE_DEFAULTS["n_calibration"])
            info.update(_static(fp32, scratch, feeds, where, real))
        elif calibration is not None and len(calibration):
            feeds, where, _ = _calibration_feeds(est, calibration, n_calibration or TEXT_DEFAULTS["n_calibration"])
            info.update(_dynamic(fp32, scratch, feeds, where))
        else:
            info.update(_dynamic(fp32, scratch, None, ""))
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
    parity = check_parity(est, path, data)
    own = folder / META
    write_onnx_meta(folder, json.loads(own.read_text()) if own.is_file() else est.bundle_meta(), INT8_FILE,
                    {"step": "int8", **meta["quantization"], "parity": parity.to_dict()})
    return path, parity
