"""Parquet and Arrow files as pandas and pyarrow write them; expected numbers
from torch and scikit-learn on the arrays the files were written from."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import sklearn.metrics
import torch
import torch.nn.functional as F

from conftest import error_line, xent, xent_json
from xentcli.engine.rows import ClassRows
from xentcli.readers import load_batch

CLASSES = ["cat", "dog", "bird", "fish"]


def data(seed=0, rows=500):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, 4)) * 2, rng.integers(0, 4, size=rows)


def torch_loss(x, y):
    return float(F.cross_entropy(torch.tensor(x, dtype=torch.float64), torch.tensor(y)))


@pytest.mark.parametrize("index", [False, True])
def test_pandas_to_parquet_with_class_columns_and_name_labels(tmp_path, index):
    x, y = data()
    frame = pd.DataFrame(x, columns=CLASSES, index=pd.Index(np.arange(500) * 7, name=None) if index else None)
    frame["label"] = np.array(CLASSES)[y]
    frame.to_parquet(tmp_path / "eval.parquet", index=index, row_group_size=128)
    result = xent("compute", tmp_path / "eval.parquet", "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json

    found = json.loads(result.stdout)
    assert found["loss"] == pytest.approx(torch_loss(x, y), rel=1e-12)
    assert found["class_names"] == CLASSES and "labels from its column 'label'" in result.stderr


def test_a_list_column_and_labels_in_a_second_file(tmp_path):
    x, y = data(1)
    pq.write_table(pa.table({"logits": pa.array(list(x.astype(np.float32)), type=pa.list_(pa.float32()))}),
                   tmp_path / "x.parquet", row_group_size=100)
    pq.write_table(pa.table({"target": y}), tmp_path / "y.parquet")
    found = xent_json(tmp_path / "x.parquet", tmp_path / "y.parquet")
    assert found["loss"] == pytest.approx(torch_loss(x.astype(np.float32), y), rel=1e-6)
    assert found["dtype"] == "float32" and found["class_names"] is None
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 4)
    pq.write_table(pa.table({"scores": fixed, "label": y}), tmp_path / "fixed.parquet")
    assert xent_json(tmp_path / "fixed.parquet")["loss"] == pytest.approx(torch_loss(x, y), rel=1e-12)
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    assert xent_json(tmp_path / "x.parquet", tmp_path / "y.csv")["loss"] == found["loss"]


def test_row_groups_are_the_blocks(tmp_path):
    x, y = data(2, rows=1000)
    pd.DataFrame(x, columns=CLASSES).assign(label=y).to_parquet(tmp_path / "e.parquet", row_group_size=64)
    batch = load_batch(str(tmp_path / "e.parquet"), label_col="label")
    spans = ClassRows(batch.logits, 1).spans(10_000)
    assert spans[:2] == [(0, 64), (64, 128)] and spans[-1] == (960, 1000)
    assert batch.logits[100:130].shape == (30, 4)
    np.testing.assert_array_equal(batch.logits[100:130], x[100:130])


def test_feather_written_by_pandas_and_pyarrow(tmp_path):
    x, y = data(3)
    frame = pd.DataFrame(x, columns=CLASSES).assign(label=np.array(CLASSES)[y])
    frame.to_feather(tmp_path / "a.feather")
    assert xent_json(tmp_path / "a.feather")["loss"] == pytest.approx(torch_loss(x, y), rel=1e-12)
    feather.write_feather(frame, tmp_path / "b.arrow", chunksize=77)
    assert xent_json(tmp_path / "b.arrow")["loss"] == pytest.approx(torch_loss(x, y), rel=1e-12)


def test_logits_cols_picks_the_columns(tmp_path):
    x, y = data(4)
    frame = pd.DataFrame(x, columns=[f"p_{c}" for c in CLASSES])
    frame["confidence"] = x.max(axis=1)  # a numeric column that is not a logit
    frame["label"] = y
    frame.to_parquet(tmp_path / "e.parquet")
    found = xent_json(tmp_path / "e.parquet", "--logits-cols", "p_*")
    assert found["loss"] == pytest.approx(torch_loss(x, y), rel=1e-12)
    listed = xent_json(tmp_path / "e.parquet", "--logits-cols", "p_cat,p_dog,p_bird,p_fish", "--label-col", "label")
    assert listed["loss"] == found["loss"]
    everything = xent_json(tmp_path / "e.parquet")  # without it, the extra column would be a fifth class
    assert everything["classes"] == 5
    assert "matches no column" in error_line(xent("compute", tmp_path / "e.parquet", "--logits-cols", "q_*"))


def test_a_binary_score_column(tmp_path):
    rng = np.random.default_rng(5)
    p, y = rng.uniform(0.01, 0.99, size=300), rng.integers(0, 2, size=300)
    pd.DataFrame({"p_positive": p, "y": y}).to_parquet(tmp_path / "b.parquet")
    found = xent_json(tmp_path / "b.parquet", "--input", "probs", "--convention", "sklearn")
    assert found["task"] == "binary" and found["loss"] == pytest.approx(sklearn.metrics.log_loss(y, p), rel=1e-12)


def test_damaged_values_are_one_line_errors(tmp_path):
    x, y = data(6, rows=50)
    table = pa.table({"a": pa.array([*x[:10, 0], None, *x[11:, 0]]), "b": x[:, 1], "label": y % 2})
    pq.write_table(table, tmp_path / "null.parquet", row_group_size=8)
    assert "row 10" in error_line(xent("compute", tmp_path / "null.parquet"))
    ragged = pa.table({"logits": pa.array([[1.0, 2.0], [1.0, 2.0, 3.0]]), "label": [0, 1]})
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    line = error_line(xent("compute", tmp_path / "ragged.parquet"))
    assert "row 1" in line and "3 numbers" in line
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    assert "not a Parquet file" in error_line(xent("compute", tmp_path / "bad.parquet", tmp_path / "bad.parquet"))


def test_pyarrow_is_an_extra_imported_only_for_columnar_files(tmp_path):
    np.savetxt(tmp_path / "x.csv", data()[0][:5], delimiter=",")
    np.savetxt(tmp_path / "y.csv", data()[1][:5], fmt="%d")
    code = (
        "import sys; from typer.testing import CliRunner; from xentcli.cli import app; "
        f"r = CliRunner().invoke(app, ['compute', {str(tmp_path / 'x.csv')!r}, {str(tmp_path / 'y.csv')!r}]); "
        "print(r.exit_code, 'pyarrow' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == ["0", "False"]
    pd.DataFrame(data()[0], columns=CLASSES).assign(label=data()[1]).to_parquet(tmp_path / "e.parquet")
    hidden = (
        "import sys; sys.modules['pyarrow'] = None; from typer.testing import CliRunner; from xentcli.cli import app; "
        f"r = CliRunner().invoke(app, ['compute', {str(tmp_path / 'e.parquet')!r}]); print(r.exit_code); print(r.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", hidden], capture_output=True, text=True).stdout
    assert out.startswith("2\n") and "pip install 'xentcli[parquet]'" in out


def test_a_label_column_is_never_a_class_even_beside_a_labels_file(tmp_path):
    x, y = data(7)
    pd.DataFrame(x, columns=CLASSES).assign(label=y).to_parquet(tmp_path / "e.parquet")
    np.save(tmp_path / "y.npy", y)
    result = xent("compute", tmp_path / "e.parquet", tmp_path / "y.npy", "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json

    assert json.loads(result.stdout)["classes"] == 4 and "column label is not a logit" in result.stderr
    assert json.loads(result.stdout)["loss"] == pytest.approx(torch_loss(x, y), rel=1e-12)
