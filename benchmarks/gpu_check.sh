#!/usr/bin/env bash
# GPU check (issue 6): on a machine with one NVIDIA GPU, no network, and torch, timm,
# transformers and accelerate preinstalled, run the speed benchmarks on CUDA (bf16 autocast)
# and print the ratios against their baselines, images/s and achieved TFLOP/s against the
# card's peak. Needs nothing else beyond this repository: the image benchmarks use the
# offline EfficientNet-Lite0 weights when their package is installed and the same architecture
# randomly initialised otherwise (speed does not depend on the weights); data are synthetic
# unless Fashion-MNIST is installed. Well under 10 minutes on an H100.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device"
print(torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
python benchmarks/gpu_flops.py --size 224 --batch 256
python benchmarks/speed.py --device cuda --size 224 --n 2000 --steps 40 --which extract,head,finetune,text
