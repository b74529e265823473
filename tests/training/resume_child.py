"""Child process for the kill-and-resume tests: fine-tunes tiny:cnn on an image folder and
SIGKILLs itself after optimizer step ``kill_at`` (0: never); writes final weights to ``result``.
With TASK (e.g. ``dann``, or another adaptation task) the run adapts to DATA itself as the
unlabeled stream; ``contrastive`` tunes the body on pairs and fits the head after; STRATEGY
(default ``fine_tuning``, or ``lora``) says what trains.

    python resume_child.py DATA OUT KILL_AT EVERY WORKERS RESUME RESULT [TASK [STRATEGY]]
"""
import os
import signal
import sys

from safetensors.torch import save_file

from headstart import Headstart


def main() -> None:
    data, out, kill_at, every, workers, resume, result = sys.argv[1:8]
    task = sys.argv[8] if len(sys.argv) > 8 else "classification"
    strategy = sys.argv[9] if len(sys.argv) > 9 else "fine_tuning"

    def on_step(info: dict) -> None:
        if info["global_step"] == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)

    est = Headstart(backbone="tiny:cnn", strategy=strategy, task=task, verbose=False, final_fit="split", strategy_params={"epochs": 3, "batch_size": 8, "augment": True, "init_head": "random"}, run={"out": out, "checkpoint_every": int(every) or None, "resume": resume == "1", "on_step": on_step}, runtime={"num_workers": int(workers), "cache_dir": False})
    est.fit(data, unlabeled=data if task in ("dann", "cdan", "coral", "mmd", "entropy") else None)
    save_file({k: v.contiguous() for k, v in est.model_.state_dict().items()}, result)


if __name__ == "__main__":
    main()
