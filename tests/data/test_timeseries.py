import numpy as np
import pandas as pd
import pytest

from headstart.data.loaders import make_loader
from headstart.data.config import PretrainedCfg
from headstart.data.sources import read_data
from headstart.data.timeseries import series_batch
from headstart.data.validate import DataError, check_data


def _wide(path, rows, labels):
    width = max(len(r) for r in rows)
    df = pd.DataFrame([list(r) + [None] * (width - len(r)) for r in rows], columns=[f"t{i}" for i in range(width)])
    df.insert(0, "label", labels)
    df.to_csv(path, index=False)
    return path


def test_a_wide_csv_is_read_as_univariate_series_and_trailing_empty_cells_shorten_a_row(tmp_path):
    p = _wide(tmp_path / "w.csv", [[1, 2, 3, 4], [5, 6, 7]], ["a", "b"])
    d = read_data(p)
    assert d.modality == "timeseries" and d.labels == ["a", "b"]
    assert [x.shape for x in d.items] == [(1, 4), (1, 3)]
    assert d.items[1].tolist() == [[5, 6, 7]] and d.origins == [f"{p}:2", f"{p}:3"]


def test_a_long_csv_groups_ids_orders_time_and_stacks_channels(tmp_path):
    rows = [dict(id=s, channel=c, time=t, value=10 * t + (c == "y"), label=f"L{s}")
            for s in (7, 3) for c in ("x", "y") for t in (2, 0, 1)]
    pd.DataFrame(rows).to_csv(tmp_path / "l.csv", index=False)
    d = read_data(tmp_path / "l.csv")
    assert d.labels == ["L7", "L3"] and d.items[0].shape == (2, 3)
    assert d.items[0].tolist() == [[0, 10, 20], [1, 11, 21]]
    assert "(id 7)" in d.origins[0]


def test_a_long_csv_with_two_labels_for_one_id_is_refused_naming_it(tmp_path):
    pd.DataFrame([dict(id="s1", time=0, value=1, label="a"), dict(id="s1", time=1, value=2, label="b")]
                 ).to_csv(tmp_path / "l.csv", index=False)
    with pytest.raises(ValueError, match="id 's1' has several labels"):
        read_data(tmp_path / "l.csv")


def test_npz_reads_3d_and_2d_arrays_and_nan_padding_marks_unequal_lengths(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x[1, :, 2:] = np.nan  # the second series is 2 steps long
    np.savez(tmp_path / "a.npz", X=x, y=np.array([0, 1]))
    d = read_data(tmp_path / "a.npz")
    assert [s.shape for s in d.items] == [(3, 4), (3, 2)] and d.labels == [0, 1]
    np.savez(tmp_path / "b.npz", X=np.ones((5, 9)), y=np.arange(5))
    assert read_data(tmp_path / "b.npz").items[0].shape == (1, 9)


def test_an_in_memory_2d_array_is_time_series():
    d = read_data(np.random.rand(4, 12), ["a", "b", "a", "b"])
    assert d.modality == "timeseries" and d.items[0].shape == (1, 12)


def test_a_text_csv_with_numeric_looking_columns_stays_text(tmp_path):
    pd.DataFrame({"text": ["good", "bad"], "a": [1, 2], "b": [3, 4], "c": [5, 6], "label": ["p", "n"]}).to_csv(
        tmp_path / "t.csv", index=False)
    assert read_data(tmp_path / "t.csv").modality == "text"


def test_unequal_lengths_are_padded_per_batch_with_their_lengths():
    b = series_batch([(np.ones((2, 5), np.float32), 0), (np.ones((2, 3), np.float32), 1)])
    x, n = b["inputs"]["series"], b["inputs"]["lengths"]
    assert x.shape == (2, 2, 5) and n.tolist() == [5, 3] and x[1, :, 3:].abs().sum() == 0


def test_the_loader_serves_series_batches(tmp_path):
    d = read_data(_wide(tmp_path / "w.csv", [[1, 2, 3], [4, 5, 6, 7]], ["a", "b"]))
    batch = next(iter(make_loader(d, np.array([0, 1]), PretrainedCfg("timeseries"), train=False, batch_size=2)))
    assert batch["inputs"]["series"].shape == (2, 1, 4) and batch["targets"].tolist() == [0, 1]


def test_preflight_names_the_row_of_a_nan_or_inf_and_skips_one_step_series(tmp_path):
    rows = [[1, 2, 3, 4], [1, "", 3, 4], [1, 2, "inf", 4], [3], [4, 3, 2, 1], [0, 1, 0, 1]]
    d = read_data(_wide(tmp_path / "w.csv", rows, ["a", "b", "a", "b", "a", "b"]))
    report, clean, _, _ = check_data(d)
    bad = {b.origin: b.reason for b in report.bad}
    assert bad[f"{tmp_path / 'w.csv'}:3"].startswith("NaN or missing value at step 1")
    assert bad[f"{tmp_path / 'w.csv'}:4"].startswith("infinite value at step 2")
    assert "1 step(s)" in bad[f"{tmp_path / 'w.csv'}:5"]
    assert len(clean) == 3 and "time series: 3 series, 1 channel, 4 steps" in report.format()


def test_preflight_states_unequal_lengths_and_warns_on_constant_series(tmp_path):
    d = read_data(_wide(tmp_path / "w.csv", [[1, 2, 3, 4], [2, 2, 2], [3, 1, 2]], ["a", "b", "b"]))
    report, _, _, _ = check_data(d)
    assert "3-4 steps (unequal lengths" in report.notes[0]
    assert any("constant" in w and ":3" in w for w in report.warnings)


def test_preflight_refuses_a_single_class(tmp_path):
    with pytest.raises(DataError, match="only one class"):
        check_data(read_data(_wide(tmp_path / "w.csv", [[1, 2, 3], [3, 2, 1]], ["a", "a"])))
