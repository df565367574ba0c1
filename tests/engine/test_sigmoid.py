"""The sigmoid family (binary and multi-label cross-entropy) against each library itself.

Expected values are computed here by torch (binary_cross_entropy[_with_logits]),
Keras 3 on jax (BinaryCrossentropy, in float64), optax (sigmoid_binary_cross_entropy)
and scikit-learn (log_loss), on their documented examples and on seeded random
cases; the docstring numbers quoted are theirs.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402
import sklearn.metrics  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import xentcli  # noqa: E402
from xentcli.errors import XentError  # noqa: E402

jax.config.update("jax_enable_x64", True)
bce = xentcli.binary_cross_entropy
SEEDS = range(8)


def case(seed: int, classes: int = 1, soft: bool = False):
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 60))
    shape = (rows,) if classes == 1 else (rows, classes)
    x = rng.normal(size=shape) * rng.choice([0.5, 3.0, 30.0])
    y = rng.uniform(size=shape) if soft else rng.integers(0, 2, size=shape).astype(np.float64)
    return x, y


def t(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("classes,soft", [(1, False), (1, True), (4, False), (4, True)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_with_logits(seed, classes, soft, reduction):
    x, y = case(seed, classes, soft)
    theirs = F.binary_cross_entropy_with_logits(t(x), t(y), reduction=reduction)
    ours = bce(x, y, reduction=reduction)
    if reduction == "none":
        expected = theirs.numpy().reshape(len(x), -1).sum(axis=1)  # xent's row: the sum of its elements under torch
        np.testing.assert_allclose(ours.losses, expected, rtol=1e-12, atol=1e-13)
    else:
        assert ours.loss == pytest.approx(float(theirs), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_pos_weight_and_class_weight(seed):
    x, y = case(seed, 3)
    rng = np.random.default_rng(seed + 100)
    pos, weight = rng.uniform(0.2, 5, size=3), rng.uniform(0.1, 3, size=3)
    theirs = F.binary_cross_entropy_with_logits(t(x), t(y), weight=t(weight), pos_weight=t(pos))
    assert bce(x, y, pos_weight=pos, weight=weight).loss == pytest.approx(float(theirs), rel=1e-12)
    scalar = F.binary_cross_entropy_with_logits(t(x), t(y), pos_weight=t([2.5] * 3))
    assert bce(x, y, pos_weight=2.5).loss == pytest.approx(float(scalar), rel=1e-12)


def test_torch_stable_at_huge_logits():
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    theirs = F.binary_cross_entropy_with_logits(t(x), t(y), reduction="none").numpy()
    np.testing.assert_allclose(bce(x, y, reduction="none").losses, theirs, rtol=1e-15)
    assert theirs[2] == 1e4 and np.isfinite(bce(x, y).loss)


@pytest.mark.parametrize("seed", SEEDS)
def test_torch_probabilities_with_the_log_floor(seed):
    x, y = case(seed, 2)
    p = 1 / (1 + np.exp(-x))
    p[0] = [0.0, 1.0]  # exact 0 and 1: torch clamps each log at -100
    y[0] = [1.0, 0.0]
    theirs = F.binary_cross_entropy(t(p), t(y), reduction="sum")
    assert bce(p, y, input="probs", reduction="sum").loss == pytest.approx(float(theirs), rel=1e-12)
    assert bce(p[:1], y[:1], input="probs", reduction="sum").loss == pytest.approx(200.0)


def test_torch_documented_example():
    # torch.nn.BCEWithLogitsLoss docs: 64 classes, target 1, output 1.5, pos_weight 1 -> -log σ(1.5)
    target, output = np.ones((10, 64)), np.full((10, 64), 1.5)
    assert bce(output, target, pos_weight=np.ones(64)).loss == pytest.approx(0.20141327, rel=1e-7)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("classes", [1, 4])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_keras_binary_crossentropy(seed, classes, from_logits, smoothing):
    x, y = case(seed, classes)
    x2, y2 = x.reshape(len(x), -1), y.reshape(len(y), -1)  # Keras' binary outputs are (N, 1)
    given = x2 if from_logits else 1 / (1 + np.exp(-x2))
    rng = np.random.default_rng(seed + 7)
    sample = rng.uniform(0, 2, size=len(x))
    for reduction, weights in [("sum_over_batch_size", None), ("sum", None), ("sum_over_batch_size", sample)]:
        loss = keras.losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=smoothing,
                                               reduction=reduction, dtype="float64")
        theirs = float(loss(y2, given, sample_weight=weights))
        ours = bce(given, y2, input="logits" if from_logits else "probs", convention="keras",
                   label_smoothing=smoothing, sample_weight=weights,
                   reduction="sum" if reduction == "sum" else "mean")
        # Keras rounds somewhere in float32 even with dtype="float64" (its formula, run in float64, agrees with torch)
        assert ours.loss == pytest.approx(theirs, rel=2e-7, abs=1e-12)


def test_keras_documented_examples():
    # keras.losses.BinaryCrossentropy docstring (Keras 3), printed to 3 or 4 digits
    y_pred = np.array([-18.6, 0.51, 2.94, -12.8])
    assert bce(y_pred, np.array([0, 1, 0, 0]), convention="keras").loss == pytest.approx(0.8654, abs=1e-4)
    x, y = y_pred.reshape(2, 2), np.array([[0, 1], [0, 0]])
    assert bce(x, y, convention="keras").loss == pytest.approx(0.8654, abs=1e-4)
    assert bce(x, y, convention="keras", sample_weight=[0.8, 0.2]).loss == pytest.approx(0.243, abs=1e-3)
    assert bce(x, y, convention="keras", reduction="sum").loss == pytest.approx(1.730, abs=1e-3)
    np.testing.assert_allclose(bce(x, y, convention="keras", reduction="none").losses, [0.235, 1.496], atol=1e-3)
    # keras.losses.binary_crossentropy docstring: probabilities, per sample over the last axis
    result = bce(np.array([[0.6, 0.4], [0.4, 0.6]]), np.array([[0, 1], [0, 0]]), input="probs",
                 convention="keras", reduction="none")
    np.testing.assert_allclose(result.losses, [0.916, 0.714], atol=5e-4)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("classes,soft", [(1, False), (3, True)])
def test_optax_sigmoid_binary_cross_entropy(seed, classes, soft):
    x, y = case(seed, classes, soft)
    theirs = np.asarray(optax.sigmoid_binary_cross_entropy(x, y))
    ours = bce(x, y, convention="optax")
    assert ours.loss == pytest.approx(float(theirs.mean()), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("classes", [1, 4])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("gamma,alpha,smoothing", [(2.0, None, 0.0), (0.5, 0.25, 0.0), (3.0, 0.8, 0.2), (0.0, None, 0.1)])
def test_keras_binary_focal_crossentropy(seed, classes, from_logits, gamma, alpha, smoothing):
    x, y = case(seed, classes)
    x2, y2 = x.reshape(len(x), -1), y.reshape(len(y), -1)
    given = x2 if from_logits else 1 / (1 + np.exp(-x2))
    sample = np.random.default_rng(seed + 7).uniform(0, 2, size=len(x))
    for reduction, weights in [("sum_over_batch_size", None), ("sum", None), ("sum_over_batch_size", sample)]:
        loss = keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=alpha is not None, alpha=0.25 if alpha is None else alpha, gamma=gamma,
            from_logits=from_logits, label_smoothing=smoothing, reduction=reduction, dtype="float64")
        theirs = float(loss(y2, given, sample_weight=weights))
        ours = bce(given, y2, input="logits" if from_logits else "probs", convention="keras", focal_gamma=gamma,
                   focal_alpha=alpha, label_smoothing=smoothing, sample_weight=weights,
                   reduction="sum" if reduction == "sum" else "mean")
        assert ours.loss == pytest.approx(theirs, rel=2e-7, abs=1e-12)  # Keras rounds in float32 (see above)


def test_keras_focal_documented_examples():
    # keras.losses.BinaryFocalCrossentropy docstring (Keras 3), printed to 3 or 4 digits
    y_pred, y_true = np.array([-18.6, 0.51, 2.94, -12.8]), np.array([0, 1, 0, 0])
    keras_focal = {"convention": "keras", "input": "logits"}
    assert bce(y_pred, y_true, focal_gamma=2, **keras_focal).loss == pytest.approx(0.691, abs=1e-3)
    assert bce(y_pred, y_true, focal_gamma=2, focal_alpha=0.25, **keras_focal).loss == pytest.approx(0.51, abs=1e-2)
    x, y = y_pred.reshape(2, 2), y_true.reshape(2, 2)
    for gamma, alpha, options, expected in [
        (3, None, {}, 0.647), (3, 0.25, {}, 0.482),
        (3, None, {"sample_weight": [0.8, 0.2]}, 0.133), (3, 0.25, {"sample_weight": [0.8, 0.2]}, 0.097),
        (4, None, {"reduction": "sum"}, 1.222), (4, 0.25, {"reduction": "sum"}, 0.914),
    ]:
        assert bce(x, y, focal_gamma=gamma, focal_alpha=alpha, **options, **keras_focal).loss == pytest.approx(
            expected, abs=1e-3)
    for alpha, expected in [(None, [0.0017, 1.1561]), (0.25, [0.0004, 0.8670])]:
        result = bce(x, y, focal_gamma=5, focal_alpha=alpha, reduction="none", **keras_focal)
        np.testing.assert_allclose(result.losses, expected, atol=1e-4)
    # keras.losses.binary_focal_crossentropy docstring: probabilities, per sample
    result = bce(np.array([[0.6, 0.4], [0.4, 0.6]]), np.array([[0, 1], [0, 0]]), input="probs",
                 convention="keras", focal_gamma=2, reduction="none")
    np.testing.assert_allclose(result.losses, [0.330, 0.206], atol=5e-4)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("classes,soft", [(1, False), (3, False), (3, True)])
@pytest.mark.parametrize("gamma,alpha", [(2.0, None), (0.5, 0.25), (0.0, 0.9), (4.0, None)])
def test_optax_sigmoid_focal_loss(seed, classes, soft, gamma, alpha):
    x, y = case(seed, classes, soft)
    theirs = np.asarray(optax.losses.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma))
    ours = bce(x, y, convention="optax", focal_gamma=gamma, focal_alpha=alpha, reduction="none")
    np.testing.assert_allclose(ours.losses, theirs.reshape(len(x), -1).sum(axis=1), rtol=1e-12, atol=1e-300)
    mean = bce(x, y, convention="optax", focal_gamma=gamma, focal_alpha=alpha).loss
    assert mean == pytest.approx(float(theirs.mean()), rel=1e-12, abs=1e-300)


def test_focal_loss_is_stable_at_huge_logits():
    x, y = np.array([1e4, -1e4, 1e4, -1e4, 40.0]), np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    theirs = np.asarray(optax.losses.sigmoid_focal_loss(x, y, gamma=2.0))
    ours = bce(x, y, convention="optax", focal_gamma=2.0, reduction="none").losses
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)
    assert ours[2] == 1e4 and ours[0] == 0 and 0 < ours[4] < 1e-30  # a sure right answer costs (almost) nothing


@pytest.mark.parametrize("seed", SEEDS)
def test_sklearn_log_loss(seed):
    x, y = case(seed)
    if len(np.unique(y)) < 2:
        y[0], y[-1] = 0.0, 1.0
        if len(y) == 1:
            return
    p = 1 / (1 + np.exp(-x))
    p[0] = 1.0 - y[0]  # a confident mistake: clipped to the dtype's eps
    sample = np.random.default_rng(seed).uniform(0, 3, size=len(p))
    theirs = sklearn.metrics.log_loss(y, p, sample_weight=sample)
    assert bce(p, y, input="probs", convention="sklearn", sample_weight=sample).loss == pytest.approx(theirs, rel=1e-12)
    total = sklearn.metrics.log_loss(y, p, normalize=False)
    assert bce(p, y, input="probs", convention="sklearn", reduction="sum").loss == pytest.approx(total, rel=1e-12)


def test_sklearn_documented_example():
    # sklearn.metrics.log_loss docstring, binary through the positive column
    assert bce(np.array([0.1, 0.8, 0.7, 0.01]), np.array([0, 1, 1, 0]), input="probs",
               convention="sklearn").loss == pytest.approx(sklearn.metrics.log_loss([0, 1, 1, 0], [0.1, 0.8, 0.7, 0.01]))


def test_class_weights_of_a_binary_task_weigh_rows_by_their_class():
    x, y = case(3)
    w = np.array([0.5, 3.0])
    per_row = w[y.astype(int)]
    theirs = F.binary_cross_entropy_with_logits(t(x), t(y), weight=t(per_row))
    assert bce(x, y, weight=w).loss == pytest.approx(float(theirs), rel=1e-12)
    p = 1 / (1 + np.exp(-x))
    y[:2] = [0, 1]
    assert bce(p, y, input="probs", convention="sklearn", weight=w).loss == pytest.approx(
        sklearn.metrics.log_loss(y, p, sample_weight=w[y.astype(int)]), rel=1e-12)


@pytest.mark.parametrize(
    "scores,labels,options,message",
    [
        ([0.5, 1.0], [0, 2], {}, "label 2 is not 0 or 1"),
        ([0.5, np.nan], [0, 1], {}, "NaN"),
        ([0.5, np.inf], [0, 1], {}, "infinite"),
        ([0.5, 1.2], [0, 1], {"input": "probs"}, "outside [0, 1]"),
        ([0.5, 0.2], [0, 0.5], {"input": "probs", "convention": "sklearn"}, "not probabilities"),
        ([0.5, 0.2], [0, 1], {"label_smoothing": 0.1}, "Keras"),
        ([0.5, 0.2], [0, 1], {"input": "probs", "pos_weight": 2.0}, "--pos-weight"),
        ([0.5, 0.2], [0, 1], {"convention": "optax", "input": "probs"}, "takes logits"),
        ([0.5, 0.2], [1, 1], {"convention": "sklearn", "input": "probs"}, "single class"),
        ([0.5, 0.2], [0, 1], {"input": "log-probs"}, "not log-probabilities"),
        ([0.5, 0.2], [0, 1, 1], {}, "shape"),
        ([0.5, 0.2], [0, 1], {"focal_gamma": 2.0}, "--convention keras or optax"),
        ([0.5, 0.2], [0, 1], {"focal_alpha": 0.25, "convention": "optax"}, "give --focal-gamma too"),
        ([0.5, 0.2], [0, 1], {"focal_gamma": -1.0, "convention": "optax"}, "γ ≥ 0"),
        ([0.5, 0.2], [0, 1], {"focal_gamma": 2.0, "focal_alpha": 1.5, "convention": "keras"}, "α in"),
    ],
)
def test_refusals_name_the_problem(scores, labels, options, message):
    with pytest.raises(XentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        bce(np.asarray(scores, dtype=np.float64), np.asarray(labels), **options)


def test_accuracy_at_a_threshold():
    p = np.array([0.2, 0.6, 0.45, 0.9])
    y = np.array([0, 1, 1, 0])
    assert bce(p, y, input="probs").accuracy == 0.5  # 0.45 < 0.5: predicted 0
    assert bce(p, y, input="probs", threshold=0.4).accuracy == 0.75  # 0.9 too is predicted 1


@pytest.mark.parametrize("seed", SEEDS)
def test_reliability_diagram_and_ece_are_sklearns_calibration_curve(seed):
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(seed)
    rows = int(rng.integers(2, 300))
    p = rng.beta(0.7, 0.7, size=rows)
    p[: rows // 4] = rng.integers(0, 16, size=rows // 4) / 15  # on the bins' edges, 0 and 1 included
    y = (rng.uniform(size=rows) < p).astype(np.float64)
    y[:2] = [0, 1]
    found = bce(p, y, input="probs", metrics=True).binary
    positive_rate, mean_p = calibration_curve(y, p, n_bins=15, strategy="uniform")
    bins = found.reliability()
    np.testing.assert_allclose([b["positive_rate"] for b in bins], positive_rate, rtol=1e-12)
    np.testing.assert_allclose([b["mean_p"] for b in bins], mean_p, rtol=1e-12)
    edges = np.linspace(0, 1, 16)  # bins closed on the right, the first holding 0 too
    by_hand = [int(((p > lo) & (p <= hi)).sum() + (lo == 0) * (p == 0).sum()) for lo, hi in zip(edges, edges[1:])]
    assert [b["rows"] for b in bins] == [n for n in by_hand if n] and sum(by_hand) == rows
    shares = np.array([b["rows"] for b in bins]) / rows
    assert found.ece() == pytest.approx(float(np.sum(shares * np.abs(positive_rate - mean_p))), rel=1e-12)
    # integer sample weights are repeated rows
    weights = rng.integers(0, 4, size=rows)
    weights[:2] = 1
    weighted = bce(p, y, input="probs", sample_weight=weights.astype(float), metrics=True).binary
    repeated_rate, repeated_p = calibration_curve(np.repeat(y, weights), np.repeat(p, weights), n_bins=15)
    np.testing.assert_allclose([b["positive_rate"] for b in weighted.reliability()], repeated_rate, rtol=1e-12)
    np.testing.assert_allclose([b["mean_p"] for b in weighted.reliability()], repeated_p, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_metrics_are_sklearns(seed):
    rng = np.random.default_rng(seed)
    rows, classes = int(rng.integers(8, 200)), int(rng.integers(2, 7))
    x = rng.normal(size=(rows, classes)) * 2
    x[: rows // 3] = np.round(x[: rows // 3])  # ties
    y = (rng.uniform(size=(rows, classes)) < 1 / (1 + np.exp(-x))).astype(np.float64)
    y[:2] = [[0] * classes, [1] * classes]
    sample = rng.uniform(0, 2, size=rows)
    found = bce(x, y, sample_weight=sample, metrics=True, by_class=True, threshold=0.4).binary.as_dict()
    p = 1 / (1 + np.exp(-x))
    for name, score in [("roc_auc", sklearn.metrics.roc_auc_score),
                        ("average_precision", sklearn.metrics.average_precision_score)]:
        per_class = score(y, p, average=None, sample_weight=sample)
        np.testing.assert_allclose([c[name] for c in found["by_class"]], per_class, rtol=1e-12)
        assert found[f"{name}_macro"] == pytest.approx(score(y, p, average="macro", sample_weight=sample), rel=1e-12)
        assert found[f"{name}_micro"] == pytest.approx(score(y, p, average="micro", sample_weight=sample), rel=1e-12)
    torch_per_class = F.binary_cross_entropy_with_logits(t(x), t(y), reduction="none").numpy() * sample[:, None]
    np.testing.assert_allclose([c["loss"] for c in found["by_class"]], torch_per_class.mean(axis=0), rtol=1e-12)
    assert [c["positives"] for c in found["by_class"]] == list(y.sum(axis=0).astype(int))
    assert [c["predicted"] for c in found["by_class"]] == list((p >= 0.4).sum(axis=0))
    assert found["element_accuracy"] == pytest.approx(float(((p >= 0.4) == y).mean()))


def test_multilabel_macro_means_the_classes_where_a_metric_is_defined():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 2, size=(40, 3)).astype(np.float64)
    y[:, 1] = 0  # no positive: ROC AUC and average precision undefined for class 1
    found = bce(x, y, metrics=True).binary.as_dict()
    p, kept = 1 / (1 + np.exp(-x)), [0, 2]
    assert found["roc_auc_classes"] == 2 and found["average_precision_classes"] == 2
    assert found["roc_auc_macro"] == pytest.approx(sklearn.metrics.roc_auc_score(y[:, kept], p[:, kept]), rel=1e-12)
    assert found["average_precision_macro"] == pytest.approx(
        sklearn.metrics.average_precision_score(y[:, kept], p[:, kept]), rel=1e-12)
    assert "by_class" not in found  # only when asked


def test_multilabel_metrics_of_two_parts_are_the_whole():
    x, y = case(2, 4)
    x, y = np.vstack([x, x[::-1] + 1]), np.vstack([y, y])
    half = len(x) // 2
    parts = [bce(x[s], y[s], metrics=True, by_class=True, part=True).binary for s in (slice(None, half), slice(half, None))]
    whole = bce(x, y, metrics=True, by_class=True).binary.as_dict()
    joined = (parts[0] + parts[1]).as_dict()
    assert joined["roc_auc_micro"] == whole["roc_auc_micro"]
    np.testing.assert_allclose([c["loss"] for c in joined["by_class"]], [c["loss"] for c in whole["by_class"]], rtol=1e-14)
