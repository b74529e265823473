"""Two CPU processes (torchrun, gloo) against one: with the per-process batch halved, every
optimizer step sees the same samples and averages the same gradients, so weights agree to
float rounding and the test metrics are identical; only rank 0 writes."""
import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.conftest import free_port, write_image_folder

CHILD = Path(__file__).with_name("ddp_child.py")


def test_two_processes_match_one(tmp_path):
    train = write_image_folder(tmp_path / "train", 16, 0)  # 48 images: 3 steps of 16 per epoch
    test = write_image_folder(tmp_path / "test", 5, 1)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    single = subprocess.run([sys.executable, str(CHILD), str(train), str(test), str(one), "16"],
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
                          str(CHILD), str(train), str(test), str(two), "8"],
                         capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert (m1["processes"], m2["processes"]) == (1, 2)
    assert m2["test"]["n"] == m1["test"]["n"] == 15  # every test sample once
    assert m2["test"]["predictions"] == m1["test"]["predictions"]
    assert abs(m2["test"]["accuracy"] - m1["test"]["accuracy"]) < 1e-9
    w1, w2 = load_file(str(one / "w.safetensors")), load_file(str(two / "w.safetensors"))
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5, msg=f"weights differ: {k}")
    assert (two / "bundle" / "model.safetensors").is_file()
