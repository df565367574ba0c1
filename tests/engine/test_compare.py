"""xent compare: each model's own input kind, the value and CSV outputs, and no silent reduction.

The expected numbers come from torch (F.cross_entropy, F.nll_loss) and
scikit-learn (log_loss, the models' own predict_proba / decision_function).
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

import xentcli
from conftest import assert_user_error, xent
from xentcli.engine.compare import compare

EPS = np.finfo(np.float64).eps


def torch_probs_rows(probabilities, labels):
    """torch's NLL of probabilities clipped to [eps, 1 - eps], per row (xent's --input probs)."""
    log_p = torch.log(torch.from_numpy(probabilities).clamp(EPS, 1 - EPS))
    return F.nll_loss(log_p, torch.from_numpy(labels), reduction="none").numpy()


def torch_logits_rows(logits, labels):
    return F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), reduction="none").numpy()


@pytest.fixture(scope="module")
def forest_and_network(tmp_path_factory):
    """A random forest's probabilities (base) and a logistic regression's logits (new) on held-out rows."""
    folder = tmp_path_factory.mktemp("models")
    features, labels = make_classification(n_samples=600, n_features=8, n_informative=5, n_classes=3, random_state=0)
    train, test = slice(0, 400), slice(400, None)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(features[train], labels[train])
    linear = LogisticRegression(max_iter=1000).fit(features[train], labels[train])
    probabilities = forest.predict_proba(features[test])
    logits = linear.decision_function(features[test])
    np.save(folder / "forest.npy", probabilities)
    np.save(folder / "linear.npy", logits)
    np.save(folder / "y.npy", labels[test])
    return folder, probabilities, logits, labels[test]


def test_each_model_has_its_own_input_kind(forest_and_network):
    folder, probabilities, logits, labels = forest_and_network
    run = xent("compare", folder / "forest.npy", folder / "linear.npy", folder / "y.npy",
               "--base-input", "probs", "--new-input", "logits", "-f", "json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    base_loss = log_loss(labels, probabilities, labels=[0, 1, 2])  # scikit-learn's own log loss of the forest
    new_loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))
    assert data["base"]["loss"] == pytest.approx(base_loss, rel=1e-12)
    assert data["new"]["loss"] == pytest.approx(new_loss, rel=1e-12)
    assert data["difference"] == pytest.approx(new_loss - base_loss, rel=1e-12)
    assert (data["base"]["input"], data["new"]["input"]) == ("probs", "logits")
    # --input sets both; --new-input overrides it for the new model alone
    same = xent("compare", folder / "forest.npy", folder / "linear.npy", folder / "y.npy",
                "--input", "probs", "--new-input", "logits", "-f", "json")
    assert json.loads(same.stdout)["difference"] == data["difference"]
    table = xent("compare", folder / "forest.npy", folder / "linear.npy", folder / "y.npy",
                 "--base-input", "probs", env={"COLUMNS": "200"})
    assert "forest.npy (probs)" in table.stdout and "linear.npy (logits)" in table.stdout


def test_one_input_for_both_models_mistakes_probabilities_for_logits(forest_and_network):
    """What the single --input did: the forest's probabilities softmaxed again as logits."""
    folder, probabilities, _, labels = forest_and_network
    run = xent("compare", folder / "forest.npy", folder / "linear.npy", folder / "y.npy", "-f", "json")
    data = json.loads(run.stdout)
    as_logits = float(F.cross_entropy(torch.from_numpy(probabilities), torch.from_numpy(labels)))
    assert data["base"]["loss"] == pytest.approx(as_logits, rel=1e-12)
    assert data["base"]["loss"] != pytest.approx(log_loss(labels, probabilities), rel=1e-3)


@pytest.mark.parametrize("seed", range(30))
def test_value_is_the_difference(seed, tmp_path):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(2, 60)), int(rng.integers(2, 8))
    probabilities = rng.dirichlet(np.ones(c) * rng.choice([0.2, 1.0, 5.0]), size=n)
    logits = rng.normal(size=(n, c)) * rng.choice([0.5, 3.0])
    labels = rng.integers(0, c, size=n)
    labels[rng.random(n) < 0.2] = -100
    np.save(tmp_path / "p.npy", probabilities)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", labels)
    reduction = ("mean", "sum")[seed % 2]
    run = xent("compare", tmp_path / "p.npy", tmp_path / "x.npy", tmp_path / "y.npy", "--base-input", "probs",
               "--reduction", reduction, "-f", "value")
    assert run.exit_code == 0, run.stderr
    kept = labels != -100
    base_rows = torch_probs_rows(probabilities[kept], labels[kept])
    new_rows = torch_logits_rows(logits[kept], labels[kept])
    if kept.any() or reduction == "sum":
        reduce = np.sum if reduction == "sum" else np.mean
        assert run.stdout.count("\n") == 1
        assert float(run.stdout) == pytest.approx(reduce(new_rows) - reduce(base_rows), rel=1e-9, abs=1e-12)
    else:
        assert run.stdout == "nan\n"  # both means are 0/0, as torch's


def test_csv_gives_every_rows_losses_and_change(forest_and_network):
    folder, probabilities, logits, labels = forest_and_network
    run = xent("compare", folder / "forest.npy", folder / "linear.npy", folder / "y.npy",
               "--base-input", "probs", "-f", "csv")
    assert run.exit_code == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert list(rows[0]) == ["row", "target", "base_loss", "new_loss", "change"]
    base_rows, new_rows = torch_probs_rows(probabilities, labels), torch_logits_rows(logits, labels)
    assert len(rows) == len(labels)
    for k, row in enumerate(rows):
        assert (int(row["row"]), int(row["target"])) == (k, labels[k])
        assert float(row["base_loss"]) == pytest.approx(base_rows[k], rel=1e-12, abs=1e-12)
        assert float(row["new_loss"]) == pytest.approx(new_rows[k], rel=1e-12, abs=1e-12)
        assert float(row["change"]) == pytest.approx(new_rows[k] - base_rows[k], rel=1e-9, abs=1e-12)


def test_csv_with_extra_dimensions_and_ignored_rows(tmp_path):
    rng = np.random.default_rng(7)
    base, new = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4, 3))
    labels = rng.integers(0, 4, size=(2, 3))
    labels[0, 1] = -100
    for name, array in (("a", base), ("b", new), ("y", labels)):
        np.save(tmp_path / f"{name}.npy", array)
    run = xent("compare", tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "y.npy", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [row["index"] for row in rows] == ["0 0", "0 1", "0 2", "1 0", "1 1", "1 2"]
    expected = (F.cross_entropy(torch.from_numpy(new), torch.from_numpy(labels), reduction="none")
                - F.cross_entropy(torch.from_numpy(base), torch.from_numpy(labels), reduction="none")).numpy()
    np.testing.assert_allclose([float(row["change"]) for row in rows], expected.reshape(-1), rtol=1e-12, atol=1e-15)
    assert rows[1]["base_loss"] == rows[1]["new_loss"] == "0.0"  # ignored, as torch gives


def test_reduction_none_is_refused(forest_and_network):
    """compare sets one number against another; --reduction none used to report the mean silently."""
    folder, *_ = forest_and_network
    line = assert_user_error(xent("compare", folder / "forest.npy", folder / "linear.npy", folder / "y.npy",
                                  "--reduction", "none"))
    assert "--reduction none gives one per row" in line and "--format csv" in line
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(5, 3)), rng.integers(0, 3, size=5)
    with pytest.raises(xentcli.XentError, match="reduction none"):
        compare(xentcli.cross_entropy(logits, labels, reduction="none"), xentcli.cross_entropy(logits, labels, reduction="none"))
    with pytest.raises(xentcli.XentError, match="reduced differently"):
        compare(xentcli.cross_entropy(logits, labels), xentcli.cross_entropy(logits, labels, reduction="sum"))


def test_value_format_as_a_ci_gate(forest_and_network):
    folder, *_ = forest_and_network
    worse = xent("compare", folder / "linear.npy", folder / "forest.npy", folder / "y.npy",
                 "--new-input", "probs", "--fail-if-worse", "0", "-f", "value")
    assert worse.exit_code == 1 and float(worse.stdout) > 0
    assert "more than --fail-if-worse 0" in worse.stderr
