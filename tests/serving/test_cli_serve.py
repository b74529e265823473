"""`headstart serve` as a user runs it: a process that answers on 127.0.0.1, refuses what is not a
bundle before loading anything, and exits cleanly on SIGTERM after answering."""
import json
import signal
import subprocess
import sys
import time
import urllib.request

from tests.conftest import free_port


def test_serve_answers_then_shuts_down_gracefully_on_sigterm(tiny_bundles, tmp_path):
    port = free_port()
    key = tmp_path / "key"
    key.write_text("k3y\n")
    proc = subprocess.Popen([sys.executable, "-m", "headstart.cli", "serve", str(tiny_bundles["txt"]), "--name",
                             "reviews", "--port", str(port), "--api-key-file", str(key)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/reviews/predict",
                                     data=json.dumps({"texts": ["the film was superb"]}).encode(),
                                     headers={"Content-Type": "application/json", "X-API-Key": "k3y"})
        got = json.loads(urllib.request.urlopen(req, timeout=30).read())
        assert got["model"] == "reviews" and got["predictions"][0]["label"] in ("pos", "neg")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    # uvicorn finishes the shutdown, then re-raises the signal (exit by SIGTERM, as a supervisor expects)
    assert proc.returncode in (0, -signal.SIGTERM), out[-2000:]
    assert "Application shutdown complete" in out and "k3y" not in out  # graceful; the key never logged


def test_serve_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    res = subprocess.run([sys.executable, "-m", "headstart.cli", "serve", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2 and "no headstart.json" in res.stderr
