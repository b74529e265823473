import pytest
import torch

from headstart._files import atomic_write_text, check_finite, load_torch_weights


class _Evil:
    """Unpickling this would create a file: the classic malicious-checkpoint payload."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (str(self.sentinel), "w"))


def test_a_malicious_pt_file_is_refused_and_its_code_never_runs(tmp_path):
    sentinel, bad = tmp_path / "pwned", tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2), "payload": _Evil(sentinel)}, bad)
    assert not sentinel.exists()
    with pytest.raises(ValueError, match="weights.pt: refused: loading it would unpickle"):
        load_torch_weights(bad)
    assert not sentinel.exists()


def test_a_plain_state_dict_loads(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "ok.pt")
    assert torch.equal(load_torch_weights(tmp_path / "ok.pt")["w"], torch.ones(3))


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    atomic_write_text(tmp_path / "latest", "a")
    atomic_write_text(tmp_path / "latest", "b")
    assert (tmp_path / "latest").read_text() == "b" and [p.name for p in tmp_path.iterdir()] == ["latest"]


def test_check_finite_names_the_tensor():
    with pytest.raises(FloatingPointError, match="head.fc.bias"):
        check_finite({"head.fc.bias": torch.tensor([1.0, float("inf")])}, "a bundle")
