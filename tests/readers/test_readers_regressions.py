"""Regressions of the readers: files read into the wrong numbers, or refused wrongly.

Each pins a bug a review found (a wrong number with exit 0, an exit 70, a
lost reading, a misleading message) by the reproduction that showed it;
expected values come from torch, scikit-learn or pandas on the arrays the
files were written from.
"""

from __future__ import annotations


import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from conftest import SAMPLES, assert_user_error, error_line, torch_loss, write_csv, xent, xent_json
from xentcli.readers import text as inputs

CLASSES = ["cat", "dog", "bird"]


@pytest.mark.parametrize("fast", [True, False])
def test_a_longer_row_is_refused_not_truncated(tmp_path, monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(inputs, "_fastcsv", None)
    path = tmp_path / "x.csv"
    path.write_text("1,2,3\n3,1,0,4\n0,0,5\n")
    labels = write_csv(tmp_path / "y.csv", [0, 1, 2])
    assert_user_error(xent("compute", path, labels), f"{path}:2:", "4 columns but the first row has 3")


def test_label_column_of_names_without_a_header_keeps_the_first_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("".join((SAMPLES / "animals.csv").read_text().splitlines(keepends=True)[1:]))
    data = xent_json(path, "--label-col", "3", "--classes", "cat,dog,bird")
    assert data["rows"] == 8


def test_a_labels_file_with_an_id_column_is_not_soft_labels(tmp_path):
    logits = write_csv(tmp_path / "x.csv", [[1, 2], [3, 1], [0, 2]])
    labels = tmp_path / "y.csv"
    labels.write_text("id,label\n0,1\n1,0\n2,1\n")
    data = xent_json(logits, labels)
    expected = float(F.cross_entropy(torch.tensor([[1.0, 2], [3, 1], [0, 2]], dtype=torch.float64), torch.tensor([1, 0, 1])))
    assert data["soft_labels"] is False and data["loss"] == pytest.approx(expected, rel=1e-15)


def test_pandas_header_above_a_first_row_of_whole_numbers(tmp_path, six_rows):
    logits, target = six_rows
    logits[0] = [0.0, -1.0, 2.0]
    pd.DataFrame(logits).to_csv(tmp_path / "L.csv", index=False)
    pd.Series(target).to_csv(tmp_path / "Y.csv", index=False)
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "pandas' column index" in result.stderr


def test_sample_weights_with_ids_follow_the_join(tmp_path, six_rows):
    logits, target = six_rows
    ids = [f"r{k}" for k in range(6)]
    weights = np.array([0.5, 1, 2, 3, 0.25, 1.5])
    pd.DataFrame(logits, columns=CLASSES).assign(id=ids)[["id", *CLASSES]].to_csv(tmp_path / "L.csv", index=False)
    order = [4, 2, 0, 5, 1, 3]
    pd.DataFrame({"id": [ids[k] for k in order], "label": [target[k] for k in order]}).to_csv(tmp_path / "Y.csv", index=False)
    pd.DataFrame({"id": [ids[k] for k in order[::-1]], "weight": [weights[k] for k in order[::-1]]}).to_csv(
        tmp_path / "W.csv", index=False)
    per_row = torch_loss(logits, target, reduction="none")
    data = xent_json(tmp_path / "L.csv", tmp_path / "Y.csv", "--sample-weight", tmp_path / "W.csv")
    assert data["loss"] == pytest.approx(float((per_row * weights).sum() / weights.sum()), rel=1e-12)


def test_balanced_weights_with_one_hot_labels_and_ignored_rows(tmp_path):
    rng = np.random.default_rng(3)
    logits, target = rng.normal(size=(30, 2)), rng.choice(2, size=30, p=[0.2, 0.8])
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "onehot.npy", np.eye(2)[target])
    weights = compute_class_weight("balanced", classes=np.arange(2), y=target)
    expected = float(-(weights[target] * torch.log_softmax(torch.from_numpy(logits), 1).numpy()[np.arange(30), target]).sum() / 30)
    assert xent_json(tmp_path / "L.npy", tmp_path / "onehot.npy", "--weight", "balanced")["loss"] == pytest.approx(expected, rel=1e-12)
    # The first 5 rows ignored (as class 7): only the counted labels are balanced.
    weights = compute_class_weight("balanced", classes=np.arange(2), y=target[5:])
    expected = torch_loss(logits[5:], target[5:], weights)
    np.save(tmp_path / "Yi.npy", np.where(np.arange(30) < 5, 7, target))
    data = xent_json(tmp_path / "L.npy", tmp_path / "Yi.npy", "--weight", "balanced", "--ignore-index", "7")
    assert data["loss"] == pytest.approx(expected, rel=1e-12)


def test_an_id_col_that_names_no_column_is_an_error(tmp_path, six_rows):
    logits, target = six_rows
    pd.DataFrame(logits, columns=CLASSES).assign(sample=range(100, 106))[["sample", *CLASSES]].to_csv(tmp_path / "L.csv", index=False)
    np.save(tmp_path / "Y.npy", target)
    assert "--id-col 'sampel' names no column" in error_line(xent("compute", tmp_path / "L.csv", tmp_path / "Y.npy", "--id-col", "sampel"))
    data = xent_json(tmp_path / "L.csv", tmp_path / "Y.npy", "--id-col", "sample")
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_a_class_called_id_is_a_class(tmp_path, six_rows):
    logits, target = six_rows
    pd.DataFrame(logits, columns=["de", "id", "ms"]).to_csv(tmp_path / "lang.csv", index=False)
    np.save(tmp_path / "Y.npy", target)
    data = xent_json(tmp_path / "lang.csv", tmp_path / "Y.npy")
    assert data["classes"] == 3 and data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_ids_in_one_file_only_are_said_unused(tmp_path, six_rows):
    logits, target = six_rows
    pd.DataFrame(logits, columns=CLASSES).assign(id=[5, 3, 9, 1, 7, 2])[["id", *CLASSES]].to_csv(tmp_path / "L.csv", index=False)
    np.save(tmp_path / "Y.npy", target)
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.npy", "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "row ids are not used" in result.stderr and "paired by position" in result.stderr


def test_a_class_name_on_the_first_line_is_a_label_and_classes_are_distinct(tmp_path, six_rows):
    logits, target = six_rows
    np.save(tmp_path / "L.npy", logits)
    (tmp_path / "Y.csv").write_text("\n".join(["cat"] + [CLASSES[t] for t in target]) + "\n")
    assert "7 rows of labels" in error_line(xent("compute", tmp_path / "L.npy", tmp_path / "Y.csv", "--classes", "cat,dog,bird"))
    assert "names a class twice" in error_line(xent("compute", tmp_path / "L.npy", tmp_path / "Y.csv", "--classes", "cat,cat,dog"))


def test_label_col_naming_an_id_like_column(tmp_path, six_rows):
    logits, target = six_rows
    pd.DataFrame(logits, columns=CLASSES).assign(id=target).to_csv(tmp_path / "K.csv", index=False)
    data = xent_json(tmp_path / "K.csv", "--label-col", "id")
    assert data["classes"] == 3 and data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_a_checkpoint_dict_with_a_number_beside_the_tensors(tmp_path, six_rows):
    logits, target = six_rows
    torch.save({"logits": torch.from_numpy(logits), "labels": torch.from_numpy(target), "epoch": 3}, tmp_path / "ckpt.pt")
    assert xent_json(tmp_path / "ckpt.pt")["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_large_text_with_names_ids_and_flags(tmp_path, streamed):
    rng = np.random.default_rng(8)
    logits, target = rng.normal(size=(60, 3)), rng.integers(0, 3, size=60)
    ids = [f"img_{k}" for k in range(60)]
    frame = pd.DataFrame(logits, columns=CLASSES).assign(id=ids, label=[CLASSES[t] for t in target])
    frame.to_csv(tmp_path / "L.csv", index=False)
    data = xent_json(tmp_path / "L.csv", "--label-col", "label")
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)
    order = rng.permutation(60)
    soft = pd.get_dummies(pd.Series([CLASSES[t] for t in target[order]]))
    soft.insert(0, "id", [ids[k] for k in order])
    soft.to_csv(tmp_path / "Q.csv", index=False)
    frame.drop(columns="label").to_csv(tmp_path / "X.csv", index=False)
    data = xent_json(tmp_path / "X.csv", tmp_path / "Q.csv")
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_soft_labels_with_a_class_called_y(tmp_path):
    rng = np.random.default_rng(31)
    logits, target = rng.normal(size=(8, 3)), rng.integers(0, 3, size=8)
    pd.DataFrame(logits, columns=["x", "y", "z"]).to_csv(tmp_path / "L.csv", index=False)
    pd.get_dummies(pd.Series(np.array(["x", "y", "z"])[target]), dtype=int).reindex(columns=["x", "y", "z"], fill_value=0).to_csv(
        tmp_path / "Q.csv", index=False)
    data = xent_json(tmp_path / "L.csv", tmp_path / "Q.csv")
    assert data["soft_labels"] is True and data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_a_duplicate_sample_weight_id_is_an_error(tmp_path, six_rows):
    logits, target = six_rows
    ids = [f"r{k}" for k in range(6)]
    pd.DataFrame(logits, columns=CLASSES).assign(id=ids)[["id", *CLASSES]].to_csv(tmp_path / "L.csv", index=False)
    pd.DataFrame({"id": ids, "label": target}).to_csv(tmp_path / "Y.csv", index=False)
    pd.DataFrame({"id": ids + ["r0"], "weight": [1.0] * 7}).to_csv(tmp_path / "W.csv", index=False)
    assert "'r0' appears twice" in error_line(xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--sample-weight", tmp_path / "W.csv"))


def test_id_col_none_makes_a_class_of_an_id_like_name(tmp_path):
    rng = np.random.default_rng(33)
    logits = rng.integers(-3, 4, size=(6, 3)).astype(float)
    logits[:, 1] = np.arange(6)  # whole, unique: looks like ids
    target = rng.integers(0, 3, size=6)
    pd.DataFrame(logits, columns=["thumb", "index", "middle"]).to_csv(tmp_path / "L.csv", index=False)
    np.save(tmp_path / "Y.npy", target)
    data = xent_json(tmp_path / "L.csv", tmp_path / "Y.npy", "--id-col", "none")
    assert data["classes"] == 3 and data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_labels_called_class_id_and_pandas_index_against_real_ids(tmp_path, six_rows):
    logits, target = six_rows
    pd.DataFrame(logits, columns=CLASSES).to_csv(tmp_path / "L.csv")  # pandas' index 0..5
    pd.DataFrame({"sample_id": range(100, 106), "class_id": target}).to_csv(tmp_path / "Y.csv", index=False)
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "paired by position" in result.stderr


def test_sklearn_classes_header_and_id_above_pandas_index(tmp_path, six_rows):
    logits, target = six_rows
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pd.DataFrame(probabilities, columns=[1, 2, 3]).to_csv(tmp_path / "P.csv", index=False)  # clf.classes_ = [1, 2, 3]
    np.savetxt(tmp_path / "Y.csv", target + 1, fmt="%d")
    data = xent_json(tmp_path / "P.csv", tmp_path / "Y.csv", "--input", "probs")
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-9)
    pd.DataFrame(logits).assign(id=range(6))[["id", 0, 1, 2]].to_csv(tmp_path / "I.csv", index=False)
    np.save(tmp_path / "Y.npy", target)
    assert xent_json(tmp_path / "I.csv", tmp_path / "Y.npy")["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_a_form_feed_line_is_the_same_row_on_every_path(tmp_path, streamed):
    (tmp_path / "x.csv").write_text("".join(f"{k}.5,1\n" for k in range(40)) + "\f\n" + "".join(f"{k}.5,1\n" for k in range(40)))
    np.savetxt(tmp_path / "y.csv", np.zeros(81), fmt="%d")  # the form-feed line is a row, as the C reader counts it
    line = error_line(xent("compute", tmp_path / "x.csv", tmp_path / "y.csv"))
    assert "x.csv:41" in line


def test_class_weights_under_pandas_header_are_settled_by_counting(tmp_path, six_rows):
    logits, target = six_rows
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target)
    pd.Series([1.0, 2.0, 3.0]).to_csv(tmp_path / "w.csv", index=False)  # writes 0, then 1.0, 2.0, 3.0
    result = xent("compute", tmp_path / "L.npy", tmp_path / "Y.npy", "--weight", tmp_path / "w.csv", "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target, [1, 2, 3]), rel=1e-12)
    assert "is a header" in result.stderr


@pytest.mark.parametrize("side", ["logits", "labels"])
def test_a_nul_byte_above_the_rows_of_a_streamed_file_is_refused(tmp_path, streamed, side):
    """A large file's rows are checked for NUL bytes as they are counted; a first
    line holding one was read as a header and dropped: with one row fewer the
    labels paired with the wrong logits, exit 0 (found by the streamed fuzz)."""
    rng = np.random.default_rng(9)
    logits, target = rng.normal(size=(40, 3)), rng.integers(0, 3, size=40)
    write_csv(tmp_path / "x.csv", logits)
    (tmp_path / "y.csv").write_text("".join(f"{t}\n" for t in target))
    bad = tmp_path / ("x.csv" if side == "logits" else "y.csv")
    bad.write_bytes(b"\x00\n" + bad.read_bytes().split(b"\n", 1)[1])  # the first row: a NUL byte
    assert_user_error(xent("compute", tmp_path / "x.csv", tmp_path / "y.csv"), f"{bad}:1", "NUL bytes")


@pytest.mark.parametrize("which", ["logits", "labels", "both", "binary scores"])
def test_pandas_index_written_without_a_header_is_row_ids(tmp_path, which, streamed):
    """`df.to_csv(path, header=False)` keeps pandas' index: a first column 0, 1,
    …, N-1 above no header. It was read as a class of logits (a wrong number,
    exit 0) or made the labels two columns; now it is the rows' ids, said on
    stderr, and `--id-col none` keeps it a class. Streamed, as a large file is."""
    rng = np.random.default_rng(14)
    binary = which == "binary scores"
    logits = rng.normal(size=(30, 1 if binary else 4)) * 2
    target = rng.integers(0, 2 if binary else 4, size=30)
    pd.DataFrame(logits).to_csv(tmp_path / "x.csv", header=False, index=which in ("logits", "both", "binary scores"))
    pd.Series(target).to_csv(tmp_path / "y.csv", header=False, index=which in ("labels", "both"))
    result = xent("compute", tmp_path / "x.csv", tmp_path / "y.csv", "--format", "json")
    assert result.exit_code == 0, result.stderr
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    expected = F.binary_cross_entropy_with_logits(x[:, 0], t.double()) if binary else F.cross_entropy(x, t)
    assert json.loads(result.stdout)["loss"] == pytest.approx(float(expected), rel=1e-12)
    assert "the row numbers" in result.stderr
    if which == "logits":  # asked to keep it a class, it is one: five columns of logits
        kept = xent_json(tmp_path / "x.csv", tmp_path / "y.csv", "--id-col", "none")
        assert kept["classes"] == 5


def test_a_first_column_that_is_not_the_row_numbers_stays_a_class(tmp_path):
    rng = np.random.default_rng(15)
    logits = rng.normal(size=(20, 3))
    logits[:, 0] = np.arange(20)
    logits[17, 0] = 18  # 0, 1, …, 16, 18, …: not the row numbers
    target = rng.integers(0, 3, size=20)
    write_csv(tmp_path / "x.csv", logits)
    (tmp_path / "y.csv").write_text("".join(f"{t}\n" for t in target))
    result = xent("compute", tmp_path / "x.csv", tmp_path / "y.csv", "--format", "json")
    assert json.loads(result.stdout)["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "row numbers" not in result.stderr


def test_sample_weights_written_with_pandas_index_and_no_header(tmp_path):
    """`pd.Series(w).to_csv(path, header=False)`: its index column is row ids, so
    the weights are the second column, as scikit-learn's log_loss takes them."""
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(16)
    p = rng.dirichlet(np.ones(3), size=12)
    target = rng.integers(0, 3, size=12)
    weights = rng.random(12) + 0.5
    write_csv(tmp_path / "p.csv", p)
    (tmp_path / "y.csv").write_text("".join(f"{t}\n" for t in target))
    pd.Series(weights).to_csv(tmp_path / "w.csv", header=False)
    data = xent_json(tmp_path / "p.csv", tmp_path / "y.csv", "--input", "probs", "--convention", "sklearn",
                     "--sample-weight", tmp_path / "w.csv")
    expected = log_loss(target, p, sample_weight=weights, labels=[0, 1, 2])
    assert data["loss"] == pytest.approx(expected, rel=1e-12)
