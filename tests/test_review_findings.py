"""What a review of the trust work found: each a wrong number with exit 0, an exit 70, or a lost reading.

Expected values come from torch, scikit-learn or pandas on the arrays the files were written from.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from conftest import xent, xent_json

CLASSES = ["cat", "dog", "bird"]


def torch_loss(logits, target, weight=None, reduction="mean"):
    w = None if weight is None else torch.as_tensor(np.asarray(weight, dtype=np.float64))
    value = F.cross_entropy(torch.as_tensor(np.asarray(logits, dtype=np.float64)), torch.as_tensor(np.asarray(target)),
                            weight=w, reduction=reduction)
    return value.numpy() if reduction == "none" else float(value)


def error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xent: error: "), result.stderr
    return lines[0]


@pytest.fixture
def batch():
    rng = np.random.default_rng(21)
    return rng.normal(size=(6, 3)) * 2, rng.integers(0, 3, size=6)


def test_pandas_header_above_a_first_row_of_whole_numbers(tmp_path, batch):
    logits, target = batch
    logits[0] = [0.0, -1.0, 2.0]
    pd.DataFrame(logits).to_csv(tmp_path / "L.csv", index=False)
    pd.Series(target).to_csv(tmp_path / "Y.csv", index=False)
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "pandas' column index" in result.stderr


def test_sample_weights_with_ids_follow_the_join(tmp_path, batch):
    logits, target = batch
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


def test_shards_with_headers_in_other_orders_line_up_by_name(tmp_path):
    rng = np.random.default_rng(4)
    logits, target = rng.normal(size=(10, 3)), rng.integers(0, 3, size=10)
    (tmp_path / "s").mkdir()
    orders = [CLASSES, ["bird", "cat", "dog"]]
    for k, order in enumerate(orders):
        part = slice(5 * k, 5 * k + 5)
        pd.DataFrame(logits[part], columns=CLASSES)[order].to_csv(tmp_path / "s" / f"logits_{k}.csv", index=False)
        pd.Series([CLASSES[t] for t in target[part]], name="label").to_csv(tmp_path / "s" / f"labels_{k}.csv", index=False)
    data = xent_json(str(tmp_path / "s" / "logits_*.csv"), str(tmp_path / "s" / "labels_*.csv"), "--weight", "1,2,3")
    assert data["loss"] == pytest.approx(torch_loss(logits, target, [1, 2, 3]), rel=1e-12)


def test_compare_lines_up_rows_by_id(tmp_path, batch):
    logits, target = batch
    ids = [f"r{k}" for k in range(6)]
    frame = pd.DataFrame(logits, columns=CLASSES).assign(id=ids)[["id", *CLASSES]]
    frame.to_csv(tmp_path / "A.csv", index=False)
    frame.iloc[[3, 1, 5, 0, 2, 4]].to_csv(tmp_path / "B.csv", index=False)
    pd.DataFrame({"id": ids, "label": target}).to_csv(tmp_path / "Y.csv", index=False)
    result = xent("compare", tmp_path / "A.csv", tmp_path / "B.csv", tmp_path / "Y.csv", "--format", "json", "-q")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["difference"] == 0 and data["interval"]["low"] == 0 and data["interval"]["high"] == 0


def test_a_config_cannot_hide_its_own_announcement(tmp_path, monkeypatch, batch):
    logits, target = batch
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target)
    (tmp_path / "xent.yaml").write_text("quiet: true\nlabel_smoothing: 0.2\n")
    monkeypatch.chdir(tmp_path)
    result = xent("compute", "L.npy", "Y.npy", "--format", "value")
    assert "using the settings in" in result.stderr and "label_smoothing" in result.stderr


def test_an_id_col_that_names_no_column_is_an_error(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits, columns=CLASSES).assign(sample=range(100, 106))[["sample", *CLASSES]].to_csv(tmp_path / "L.csv", index=False)
    np.save(tmp_path / "Y.npy", target)
    assert "--id-col 'sampel' names no column" in error_line(xent("compute", tmp_path / "L.csv", tmp_path / "Y.npy", "--id-col", "sampel"))
    data = xent_json(tmp_path / "L.csv", tmp_path / "Y.npy", "--id-col", "sample")
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_a_class_called_id_is_a_class(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits, columns=["de", "id", "ms"]).to_csv(tmp_path / "lang.csv", index=False)
    np.save(tmp_path / "Y.npy", target)
    data = xent_json(tmp_path / "lang.csv", tmp_path / "Y.npy")
    assert data["classes"] == 3 and data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_ids_in_one_file_only_are_said_unused(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits, columns=CLASSES).assign(id=[5, 3, 9, 1, 7, 2])[["id", *CLASSES]].to_csv(tmp_path / "L.csv", index=False)
    np.save(tmp_path / "Y.npy", target)
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.npy", "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "row ids are not used" in result.stderr and "paired by position" in result.stderr


def test_a_class_name_on_the_first_line_is_a_label_and_classes_are_distinct(tmp_path, batch):
    logits, target = batch
    np.save(tmp_path / "L.npy", logits)
    (tmp_path / "Y.csv").write_text("\n".join(["cat"] + [CLASSES[t] for t in target]) + "\n")
    assert "7 rows of labels" in error_line(xent("compute", tmp_path / "L.npy", tmp_path / "Y.csv", "--classes", "cat,dog,bird"))
    assert "names a class twice" in error_line(xent("compute", tmp_path / "L.npy", tmp_path / "Y.csv", "--classes", "cat,cat,dog"))


def test_label_col_naming_an_id_like_column(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits, columns=CLASSES).assign(id=target).to_csv(tmp_path / "K.csv", index=False)
    data = xent_json(tmp_path / "K.csv", "--label-col", "id")
    assert data["classes"] == 3 and data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_negative_seed_is_a_usage_error(tmp_path, batch):
    logits, target = batch
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target)
    result = xent("compare", tmp_path / "L.npy", tmp_path / "L.npy", tmp_path / "Y.npy", "--seed", "-1")
    assert result.exit_code == 2 and "--seed" in result.stderr


def test_bidi_controls_are_escaped_in_errors(tmp_path):
    name = tmp_path / "evil\u202etxt.csv"
    result = xent("compute", name, tmp_path / "y.csv")
    assert result.exit_code == 2 and "\u202e" not in result.stderr and "\\u202e" in result.stderr


def test_explain_a_masked_target_without_numpy_warnings(tmp_path):
    np.save(tmp_path / "L.npy", np.array([[-np.inf, 1.0, 0.5], [0.2, 0.3, 0.1]]))
    np.save(tmp_path / "Y.npy", np.array([0, 1]))
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "xentcli", "explain", str(tmp_path / "L.npy"), str(tmp_path / "Y.npy"),
                          "--row", "0"], capture_output=True, text=True)
    assert run.returncode == 0 and "Warning" not in run.stderr, run.stderr


def test_a_checkpoint_dict_with_a_number_beside_the_tensors(tmp_path, batch):
    logits, target = batch
    torch.save({"logits": torch.from_numpy(logits), "labels": torch.from_numpy(target), "epoch": 3}, tmp_path / "ckpt.pt")
    assert xent_json(tmp_path / "ckpt.pt")["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_output_keeps_hard_links(tmp_path, batch):
    logits, target = batch
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target)
    (tmp_path / "out.json").write_text("old\n")
    os.link(tmp_path / "out.json", tmp_path / "other.json")
    assert xent("compute", tmp_path / "L.npy", tmp_path / "Y.npy", "-f", "json", "-o", tmp_path / "out.json").exit_code == 0
    assert json.loads((tmp_path / "other.json").read_text())["rows"] == 6


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


# A second review --------------------------------------------------------------------------


def test_soft_labels_with_a_class_called_y(tmp_path):
    rng = np.random.default_rng(31)
    logits, target = rng.normal(size=(8, 3)), rng.integers(0, 3, size=8)
    pd.DataFrame(logits, columns=["x", "y", "z"]).to_csv(tmp_path / "L.csv", index=False)
    pd.get_dummies(pd.Series(np.array(["x", "y", "z"])[target]), dtype=int).reindex(columns=["x", "y", "z"], fill_value=0).to_csv(
        tmp_path / "Q.csv", index=False)
    data = xent_json(tmp_path / "L.csv", tmp_path / "Q.csv")
    assert data["soft_labels"] is True and data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_integer_labels_follow_their_columns_across_shards(tmp_path):
    rng = np.random.default_rng(32)
    logits, target = rng.normal(size=(10, 3)), rng.integers(0, 3, size=10)
    (tmp_path / "s").mkdir()
    for k, order in enumerate([CLASSES, ["bird", "cat", "dog"]]):
        part = slice(5 * k, 5 * k + 5)
        pd.DataFrame(logits[part], columns=CLASSES)[order].to_csv(tmp_path / "s" / f"logits_{k}.csv", index=False)
        own = [order.index(CLASSES[t]) for t in target[part]]  # each file's labels index its own columns
        np.savetxt(tmp_path / "s" / f"labels_{k}.csv", own, fmt="%d")
    data = xent_json(str(tmp_path / "s" / "logits_*.csv"), str(tmp_path / "s" / "labels_*.csv"))
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_compare_refuses_rows_it_cannot_line_up(tmp_path, batch):
    logits, target = batch
    ids = [f"r{k}" for k in range(6)]
    pd.DataFrame(logits, columns=CLASSES).to_csv(tmp_path / "A.csv", index=False)
    frame = pd.DataFrame(logits, columns=CLASSES).assign(id=ids)[["id", *CLASSES]]
    frame.iloc[[3, 1, 5, 0, 2, 4]].to_csv(tmp_path / "B.csv", index=False)
    pd.DataFrame({"id": ids, "label": target}).to_csv(tmp_path / "Y.csv", index=False)
    assert "cannot be lined up" in error_line(xent("compare", tmp_path / "A.csv", tmp_path / "B.csv", tmp_path / "Y.csv", "-q"))
    frame.to_csv(tmp_path / "C.csv", index=False)
    np.savetxt(tmp_path / "y.csv", target, fmt="%d")
    assert "no ids to join" in error_line(xent("compare", tmp_path / "C.csv", tmp_path / "B.csv", tmp_path / "y.csv", "-q"))


def test_a_duplicate_sample_weight_id_is_an_error(tmp_path, batch):
    logits, target = batch
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


def test_labels_called_class_id_and_pandas_index_against_real_ids(tmp_path, batch):
    logits, target = batch
    pd.DataFrame(logits, columns=CLASSES).to_csv(tmp_path / "L.csv")  # pandas' index 0..5
    pd.DataFrame({"sample_id": range(100, 106), "class_id": target}).to_csv(tmp_path / "Y.csv", index=False)
    result = xent("compute", tmp_path / "L.csv", tmp_path / "Y.csv", "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target), rel=1e-12)
    assert "paired by position" in result.stderr


def test_sklearn_classes_header_and_id_above_pandas_index(tmp_path, batch):
    logits, target = batch
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


def test_compare_says_a_notice_once(tmp_path, batch):
    logits, target = batch
    np.save(tmp_path / "A.npy", logits)
    np.save(tmp_path / "B.npy", logits * 0.5)
    pd.Series(target).to_csv(tmp_path / "Y.csv", index=False)  # its header `0` is said
    result = xent("compare", tmp_path / "A.npy", tmp_path / "B.npy", tmp_path / "Y.csv", "--format", "value")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("is a header") == 1


def test_class_weights_under_pandas_header_are_settled_by_counting(tmp_path, batch):
    logits, target = batch
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target)
    pd.Series([1.0, 2.0, 3.0]).to_csv(tmp_path / "w.csv", index=False)  # writes 0, then 1.0, 2.0, 3.0
    result = xent("compute", tmp_path / "L.npy", tmp_path / "Y.npy", "--weight", tmp_path / "w.csv", "--format", "value")
    assert float(result.stdout) == pytest.approx(torch_loss(logits, target, [1, 2, 3]), rel=1e-12)
    assert "is a header" in result.stderr
