"""``headstart distill``: writes the student bundle and says teacher and student accuracy; a missing
teacher exits 1 with the reason; --help explains the loss."""
from typer.testing import CliRunner

from headstart.cli import app
from tests.conftest import write_text_csv


def test_cli_distill_writes_a_student_bundle(tiny_bundles, tmp_path):
    train, test = write_text_csv(tmp_path / "train.csv", 30, 0), write_text_csv(tmp_path / "test.csv", 10, 1)
    r = CliRunner().invoke(app, ["distill", str(tiny_bundles["txt"]), "--student", "tfidf:1-2", "--data", str(train),
                                 "--unlabeled", str(write_text_csv(tmp_path / "u.csv", 20, 3)), "--test", str(test),
                                 "--out", str(tmp_path / "s"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "test accuracy: teacher" in r.output and "student" in r.output
    assert (tmp_path / "s" / "model.safetensors").is_file() and (tmp_path / "s" / "README.md").is_file()


def test_cli_distill_refuses_a_missing_teacher(tmp_path):
    r = CliRunner().invoke(app, ["distill", str(tmp_path / "none"), "--student", "tfidf:1-2",
                                 "--data", str(write_text_csv(tmp_path / "t.csv", 10, 0))])
    assert r.exit_code == 1 and "teacher bundle" in r.output and "cannot be loaded" in r.output


def test_cli_distill_help_explains_the_loss():
    r = CliRunner().invoke(app, ["distill", "--help"], terminal_width=200)
    assert r.exit_code == 0 and "alpha" in r.output and "--unlabeled" in r.output and "Hinton" in r.output
