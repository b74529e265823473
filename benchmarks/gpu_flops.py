"""Images/s and achieved TFLOP/s of EfficientNet-Lite0 inference and training on one GPU (bf16
autocast, channels_last), against the card's dense bf16 peak. Part of gpu_check.sh.

    python benchmarks/gpu_flops.py [--size 224] [--batch 256]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0,
                    "H100": 756.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}


def peak(name: str) -> float | None:
    for key, v in PEAK_BF16_TFLOPS.items():
        if key in name:
            return v
    return None


def backbone():
    from headstart.backbones import build_backbone
    try:
        return build_backbone("efficientnet_lite0")
    except Exception:  # weights package absent: same architecture, random weights
        return build_backbone("scratch:efficientnet_lite0")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()
    name = torch.cuda.get_device_name(0)
    bb = backbone().cuda()
    x = torch.randn(a.batch, 3, a.size, a.size, device="cuda")
    with FlopCounterMode(display=False) as fc:
        bb.forward_features(x[:1])
    fwd = fc.get_total_flops() * a.batch  # per batch
    p = peak(name)
    for mode in ("inference", "training"):
        bb.train(mode == "training")
        opt = torch.optim.AdamW(bb.parameters(), lr=1e-4, fused=True)
        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                if mode == "inference":
                    with torch.inference_mode():
                        bb.forward_features(x)
                    return
                loss = bb.forward_features(x).float().pow(2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        n, t0 = 10, time.perf_counter()
        for _ in range(n):
            step()
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / n
        flops = fwd * (1 if mode == "inference" else 3)  # backward ~ 2x forward
        tf = flops / dt / 1e12
        print(f"{name} {mode}: {a.batch / dt:,.0f} images/s at {a.size} px, {tf:.1f} TFLOP/s achieved"
              + (f" = {100 * tf / p:.1f}% of the {p:.0f} TFLOP/s bf16 dense peak" if p else " (peak unknown)"))


if __name__ == "__main__":
    main()
