"""Each library's convention, checked against the examples in that library's own docs and tests.

Sources: keras/src/losses/losses.py docstrings and losses_test.py (Keras 3);
sklearn/metrics/_classification.py log_loss docstring and
tests/test_classification.py::test_log_loss; optax/losses/_classification.py
docstrings and tests. The expected numbers are theirs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli
from cases import GRID, GRID_NAMES, make_case
from conftest import SAMPLES, assert_user_error, write_csv, xent
from xentcli.explain import explain_row

ce = xentcli.cross_entropy
KERAS_PROBS = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
KERAS_LOGITS = np.array([[8.0, 1, 1], [0, 9, 1], [2, 3, 5]])


@pytest.mark.parametrize(
    "options,expected",
    [
        ({}, 1.177),
        ({"sample_weight": [0.3, 0.7]}, 0.814),
        ({"reduction": "sum"}, 2.354),
    ],
)
def test_keras_docstring_probabilities(options, expected):
    result = ce(KERAS_PROBS, np.array([1, 2]), input="probs", convention="keras", **options)
    assert result.loss == pytest.approx(expected, abs=5e-4)


def test_keras_docstring_per_row():
    result = ce(KERAS_PROBS, np.array([1, 2]), input="probs", convention="keras", reduction="none")
    np.testing.assert_allclose(result.losses, [0.0513, 2.303], atol=5e-4)


def test_keras_renormalises_probabilities():
    """losses_test: the second row sums to 1.99 and is divided by its sum."""
    probs = np.array([[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]])
    assert ce(probs, np.arange(3), input="probs", convention="keras").loss == pytest.approx(0.3239, abs=5e-4)
    weighted = ce(probs, np.arange(3), input="probs", convention="keras", sample_weight=[1.2, 3.4, 5.6])
    assert weighted.loss == pytest.approx(1.0696, abs=5e-4)


@pytest.mark.parametrize("sample_weight,expected", [(None, 0.0573), ([1.2, 3.4, 5.6], 0.31829)])
def test_keras_logits(sample_weight, expected):
    result = ce(KERAS_LOGITS, np.arange(3), convention="keras", sample_weight=sample_weight)
    assert result.loss == pytest.approx(expected, abs=1e-4)  # Keras prints them cut to 4 digits


def test_keras_label_smoothing():
    result = ce(np.array([[100.0, -100, -100]]), np.array([0]), convention="keras", label_smoothing=0.1)
    assert result.loss == pytest.approx(400 * 0.1 / 3, rel=1e-12)


def test_keras_ignore_class_divides_by_the_valid_rows_and_gives_zero_when_all_are_ignored():
    logits = np.array([[0.854, 0.698, 0.598], [0.088, 0.86, 0.018]])
    result = ce(logits, np.array([-1, 2]), convention="keras", ignore_index=-1)
    np.testing.assert_allclose(ce(logits, np.array([-1, 2]), convention="keras", ignore_index=-1, reduction="none").losses, [0.0, 1.480129], atol=1e-6)
    assert result.loss == pytest.approx(1.480129, abs=1e-6)
    assert ce(logits, np.array([-1, -1]), convention="keras", ignore_index=-1).loss == 0.0
    assert np.isnan(ce(logits, np.array([-1, -1]), ignore_index=-1).loss)  # torch: NaN


def test_sklearn_docstring():
    probs = np.array([[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]])
    labels = np.array([1, 0, 0, 1])  # ["spam", "ham", "ham", "spam"], classes sorted: ham, spam
    assert ce(probs, labels, input="probs", convention="sklearn").loss == pytest.approx(0.21616, abs=5e-6)


@pytest.mark.parametrize(
    "probs,labels,expected",
    [
        ([[0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.6, 0.1, 0.3]], [1, 0, 2], 0.6904911),
        ([[0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.7, 0.3]], [0, 1, 1, 0], 0.7469410),
    ],
)
def test_sklearn_tests(probs, labels, expected):
    result = ce(np.array(probs), np.array(labels), input="probs", convention="sklearn")
    assert result.loss == pytest.approx(expected, abs=5e-8)
    summed = ce(np.array(probs), np.array(labels), input="probs", convention="sklearn", reduction="sum")
    assert summed.loss == pytest.approx(expected * len(labels), abs=5e-7)  # normalize=False


def test_sklearn_sample_weights_are_a_weighted_average():
    probs = np.array([[0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.6, 0.1, 0.3]])
    labels = np.array([1, 0, 2])
    weights = np.array([1.0, 2.0, 5.0])
    per_row = -np.log(probs[np.arange(3), labels])
    result = ce(probs, labels, input="probs", convention="sklearn", sample_weight=weights)
    assert result.loss == pytest.approx(np.average(per_row, weights=weights), rel=1e-12)


def test_sklearn_refuses_what_log_loss_has_no_notion_of():
    with pytest.raises(xentcli.XentError, match="no label smoothing"):
        ce(KERAS_LOGITS, np.arange(3), convention="sklearn", label_smoothing=0.1)
    with pytest.raises(xentcli.XentError, match="not soft labels"):
        ce(KERAS_LOGITS, np.full((3, 3), 1 / 3), convention="sklearn")


@pytest.mark.parametrize(
    "logits,labels,expected",
    [
        ([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]], [0, 1], [0.2761, 2.9518]),
        ([[10.0, 1, -2], [1, 4, 0.2]], [1, 0], [9.00013, 3.0696733]),
    ],
)
def test_optax_examples(logits, labels, expected):
    result = ce(np.array(logits), np.array(labels), convention="optax", reduction="none")
    np.testing.assert_allclose(result.losses, expected, atol=5e-5)
    mean = ce(np.array(logits), np.array(labels), convention="optax")
    assert mean.loss == pytest.approx(np.mean(result.losses), rel=1e-12)


def test_optax_renormalises_probabilities_without_clipping():
    probs = np.array([[0.5, 0.25, 0.0], [0.2, 0.2, 0.2]])  # rows sum to 0.75 and 0.6
    result = ce(probs, np.array([0, 2]), input="probs", convention="optax", reduction="none")
    np.testing.assert_allclose(result.losses, [-np.log(0.5 / 0.75), -np.log(1 / 3)], rtol=1e-12)
    assert np.isinf(ce(probs, np.array([2, 0]), input="probs", convention="optax").loss)  # log 0, never clipped


def test_class_weights_differ_exactly_as_documented():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4))
    labels = rng.integers(0, 4, size=50)
    weight = np.array([1.0, 2.0, 0.5, 3.0])
    torch_rows = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), reduction="none").numpy()
    w_y = weight[labels]
    expected = {
        "torch": (torch_rows * w_y).sum() / w_y.sum(),
        "sklearn": (torch_rows * w_y).sum() / w_y.sum(),  # class_weight -> sample_weight, np.average
        "keras": (torch_rows * w_y).sum() / 50,  # class_weight -> sample_weight, sum_over_batch_size
        "optax": (torch_rows * w_y).mean(),
    }
    for name, value in expected.items():
        assert ce(logits, labels, weight=weight, convention=name).loss == pytest.approx(value, rel=1e-12), name


@pytest.mark.parametrize("convention", ["torch", "keras", "optax"])
@pytest.mark.parametrize(GRID_NAMES, [case for case in GRID if case[3] == "mean"])
def test_explain_follows_every_convention(convention, weighted, ignore_index, smoothing, reduction, soft, kdim, dtype):
    logits, target, weight = make_case((weighted, ignore_index, smoothing, reduction, soft, kdim, dtype))
    sample_weight = np.random.default_rng(1).uniform(0.5, 2, size=target.size if not soft else logits.size // logits.shape[1])
    options = dict(weight=weight, ignore_index=-100 if ignore_index is None else ignore_index, label_smoothing=smoothing)
    result = ce(logits, target, convention=convention, sample_weight=sample_weight, **options)
    for row in {0, result.rows - 1}:
        e = explain_row(logits, target, result, row, convention=convention, sample_weight=float(sample_weight[row]), **options)
        assert e.loss == pytest.approx(float(result.losses[row]), rel=1e-5, abs=1e-6)


def test_torch_sample_weights_scale_rows_and_the_denominator():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(30, 5))
    labels = rng.integers(0, 5, size=30)
    weight, sample = rng.uniform(0.5, 2, size=5), rng.uniform(0.1, 3, size=30)
    rows = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels), weight=torch.from_numpy(weight), reduction="none").numpy()
    expected = (rows * sample).sum() / (weight[labels] * sample).sum()
    assert ce(logits, labels, weight=weight, sample_weight=sample).loss == pytest.approx(expected, rel=1e-12)


def test_cli_convention_sample_weight_and_explain(tmp_path):
    sample = write_csv(tmp_path / "s.csv", [0.3, 0.7])
    probs = write_csv(tmp_path / "p.csv", KERAS_PROBS)
    labels = write_csv(tmp_path / "y.csv", [1, 2])
    result = xent("compute", probs, labels, "--input", "probs", "--convention", "keras", "--sample-weight", sample, "-f", "json")
    data = json.loads(result.stdout)
    assert data["loss"] == pytest.approx(0.814, abs=5e-4)
    assert data["options"]["convention"] == "keras" and data["options"]["sample_weight"] == str(sample)
    explained = xent("explain", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--convention", "keras",
                     "-w", "1,1,1,2,1", "--row", "0", "-f", "json")
    story = json.loads(explained.stdout)
    torch_value = float(F.cross_entropy(torch.from_numpy(np.loadtxt(SAMPLES / "logits.csv", delimiter=",")),
                                        torch.tensor([3, 0, 2]), weight=torch.tensor([1.0, 1, 1, 2, 1], dtype=torch.float64)))
    assert story["torch_batch_loss"] == pytest.approx(torch_value, rel=1e-12)
    assert any("number of counted rows" in d for d in story["departures"])
    bad = xent("compute", "--convention", "caffe", "-q")
    assert bad.exit_code == 2 and "caffe" in bad.stderr and "Traceback" not in bad.stderr
    with pytest.raises(xentcli.XentError, match="unknown convention 'caffe'"):
        ce(KERAS_LOGITS, np.arange(3), convention="caffe")
    short = write_csv(tmp_path / "short.csv", [1.0])
    assert_user_error(xent("compute", probs, labels, "--input", "probs", "--sample-weight", short),
                      contains="--sample-weight has 1 values but there are 2 rows")
