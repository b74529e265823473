"""A task written by a user in one file trains through ``fit`` with no change to the package:
the README's focal-loss example, verbatim in spirit."""
import torch
import torch.nn.functional as F

from headstart import Headstart
from headstart.tasks import TASKS, ClassificationTask


class FocalLoss(ClassificationTask):
    """Lin et al. 2017: down-weight easy examples by (1 - p_t)^gamma."""

    name = "focal"

    def __init__(self, gamma: float = 2.0, label_smoothing: float = 0.0) -> None:
        super().__init__(label_smoothing=label_smoothing)
        self.gamma = gamma
        self.calls = 0

    def loss(self, output, batch, progress):
        self.calls += 1
        logp = F.log_softmax(output.logits.float(), dim=1)
        logp_t = logp.gather(1, batch["targets"][:, None])[:, 0]
        loss = -((1 - logp_t.exp()) ** self.gamma * logp_t).mean()
        return {"loss": loss, "mean_p_true": logp_t.exp().mean().detach()}


if "focal" not in TASKS:
    TASKS.register("focal")(FocalLoss)


def test_custom_focal_task_trains_through_fit_and_reloads(image_data, tmp_path):
    train, test = image_data
    task = FocalLoss(gamma=2.0)
    est = Headstart(backbone="tiny:cnn", strategy="fine_tuning", task=task, verbose=False,
                    strategy_params={"epochs": 3, "init_head": "random"}, runtime={"cache_dir": False}).fit(train, test=test)
    assert task.calls > 0  # the loop called the user's loss
    assert est.task_ is task and est.metrics_["test"]["accuracy"] > 0.5
    est.save(tmp_path / "b")
    again = Headstart.load(tmp_path / "b")
    assert again.task_.name == "focal" and (again.predict(test) == est.predict(test)).all()
    assert torch.equal(torch.as_tensor(again.decision_function(test)), torch.as_tensor(est.decision_function(test)))
