"""Child for the distributed test: fine-tune tiny:cnn on TRAIN, evaluate on TEST, and (rank 0)
write metrics + weights. Run alone, or under ``torchrun --nproc_per_node 2`` (gloo on CPU).

    python ddp_child.py TRAIN TEST OUT BATCH_PER_PROCESS
"""
import json
import sys

from safetensors.torch import save_file

from headstart import Headstart


def main() -> None:
    train, test, out, batch = sys.argv[1:]
    est = Headstart(backbone="tiny:cnn", strategy="fine_tuning", verbose=False, strategy_params={"epochs": 3, "batch_size": int(batch), "augment": True}, runtime={"cache_dir": False, "device": "cpu"}, run={"out": f"{out}/bundle"}).fit(train, test=test)
    if est.accelerator_.is_main_process:
        save_file({k: v.contiguous() for k, v in est.model_.state_dict().items()}, f"{out}/w.safetensors")
        with open(f"{out}/metrics.json", "w") as f:
            json.dump({"test": est.metrics_["test"], "processes": est.accelerator_.num_processes}, f)


if __name__ == "__main__":
    main()
