"""Regressions of the engine: shards, compare, explain and the metrics.

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

import xentcli
from conftest import assert_user_error, error_line, torch_loss, write_csv, xent, xent_json

CLASSES = ["cat", "dog", "bird"]


@pytest.fixture
def three_shards(tmp_path):
    rng = np.random.default_rng(3)
    logits, target = rng.normal(size=(30, 4)), rng.integers(0, 4, size=30)
    for k in range(3):
        np.save(tmp_path / f"x{k}.npy", logits[10 * k : 10 * k + 10])
        np.save(tmp_path / f"y{k}.npy", target[10 * k : 10 * k + 10])
    return tmp_path, logits, target


def test_sample_weights_run_on_across_files(three_shards):
    folder, logits, target = three_shards
    weights = np.linspace(0.5, 2, 30)
    write_csv(folder / "w.csv", weights)
    data = xent_json(str(folder / "x*.npy"), str(folder / "y*.npy"), "--sample-weight", folder / "w.csv")
    assert data["loss"] == pytest.approx(xentcli.cross_entropy(logits, target, sample_weight=weights).loss, rel=1e-12)
    write_csv(folder / "short.csv", weights[:10])
    assert_user_error(xent("compute", str(folder / "x*.npy"), str(folder / "y*.npy"), "--sample-weight", folder / "short.csv"),
                      contains="--sample-weight has 10 values")


def test_keras_all_ignored_is_zero_across_files(three_shards):
    folder, *_ = three_shards
    for k in range(3):
        np.save(folder / f"y{k}.npy", np.full(10, -100))
    result = xent("compute", str(folder / "x*.npy"), str(folder / "y*.npy"), "--convention", "keras", "-f", "value")
    assert float(result.stdout) == 0.0


def test_compare_without_counted_rows_and_without_resamples(tmp_path):
    rng = np.random.default_rng(5)
    np.save(tmp_path / "a.npy", rng.normal(size=(6, 3)))
    np.save(tmp_path / "b.npy", rng.normal(size=(6, 3)))
    np.save(tmp_path / "none.npy", np.full(6, -100))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, size=6))
    assert xent("compare", tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "none.npy").exit_code == 0
    data = json.loads(xent("compare", tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "y.npy", "--resamples", "0", "-f", "json").stdout)
    assert data["significant"] is False
    same = xent("compare", tmp_path / "a.npy", tmp_path / "a.npy", tmp_path / "y.npy")
    assert "new is the same" in same.stdout


def test_class_axis_zero(tmp_path):
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(5, 6))  # (classes, rows)
    target = rng.integers(0, 5, size=6)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", target)
    expected = float(F.cross_entropy(torch.from_numpy(logits.T), torch.from_numpy(target)))
    assert xent_json(tmp_path / "x.npy", tmp_path / "y.npy", "--class-axis", "0")["loss"] == pytest.approx(expected, rel=1e-12)


def test_top_1_accuracy_is_accuracy_even_with_ties():
    from xentcli.engine.metrics import MetricOptions

    result = xentcli.cross_entropy(np.zeros((4, 5)), np.array([0, 1, 2, 4]), metrics=MetricOptions(top_k=1))
    assert result.metrics.top_k_accuracy == result.accuracy == 0.25


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


def test_compare_lines_up_rows_by_id(tmp_path, six_rows):
    logits, target = six_rows
    ids = [f"r{k}" for k in range(6)]
    frame = pd.DataFrame(logits, columns=CLASSES).assign(id=ids)[["id", *CLASSES]]
    frame.to_csv(tmp_path / "A.csv", index=False)
    frame.iloc[[3, 1, 5, 0, 2, 4]].to_csv(tmp_path / "B.csv", index=False)
    pd.DataFrame({"id": ids, "label": target}).to_csv(tmp_path / "Y.csv", index=False)
    result = xent("compare", tmp_path / "A.csv", tmp_path / "B.csv", tmp_path / "Y.csv", "--format", "json", "-q")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["difference"] == 0 and data["interval"]["low"] == 0 and data["interval"]["high"] == 0


def test_explain_a_masked_target_without_numpy_warnings(tmp_path):
    np.save(tmp_path / "L.npy", np.array([[-np.inf, 1.0, 0.5], [0.2, 0.3, 0.1]]))
    np.save(tmp_path / "Y.npy", np.array([0, 1]))
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "xentcli", "explain", str(tmp_path / "L.npy"), str(tmp_path / "Y.npy"),
                          "--row", "0"], capture_output=True, text=True)
    assert run.returncode == 0 and "Warning" not in run.stderr, run.stderr


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


def test_compare_refuses_rows_it_cannot_line_up(tmp_path, six_rows):
    logits, target = six_rows
    ids = [f"r{k}" for k in range(6)]
    pd.DataFrame(logits, columns=CLASSES).to_csv(tmp_path / "A.csv", index=False)
    frame = pd.DataFrame(logits, columns=CLASSES).assign(id=ids)[["id", *CLASSES]]
    frame.iloc[[3, 1, 5, 0, 2, 4]].to_csv(tmp_path / "B.csv", index=False)
    pd.DataFrame({"id": ids, "label": target}).to_csv(tmp_path / "Y.csv", index=False)
    assert "cannot be lined up" in error_line(xent("compare", tmp_path / "A.csv", tmp_path / "B.csv", tmp_path / "Y.csv", "-q"))
    frame.to_csv(tmp_path / "C.csv", index=False)
    np.savetxt(tmp_path / "y.csv", target, fmt="%d")
    assert "no ids to join" in error_line(xent("compare", tmp_path / "C.csv", tmp_path / "B.csv", tmp_path / "y.csv", "-q"))
