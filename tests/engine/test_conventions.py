"""Each library's convention, checked against the examples in that library's own docs and tests,
and against the library itself on seeded random cases.

Sources: keras/src/losses/losses.py docstrings and losses_test.py (Keras 3);
sklearn/metrics/_classification.py log_loss docstring and
tests/test_classification.py::test_log_loss; optax/losses/_classification.py
docstrings and tests. The expected numbers are theirs: quoted from their docs,
or computed by calling Keras 3 (on jax), optax and scikit-learn here.
"""

from __future__ import annotations

import json
import math
import os
import warnings

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported: it picks its backend once

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402
import sklearn.metrics  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

jax.config.update("jax_enable_x64", True)  # so that Keras and optax compute in float64 when asked to

import xentcli
from cases import GRID, GRID_NAMES, make_case
from conftest import SAMPLES, assert_user_error, write_csv, xent
from xentcli.engine.explain import explain_row

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


# ---------------------------------------------------------------------------
# Against the libraries themselves (Keras 3 on jax, optax, scikit-learn), on
# seeded random cases; every expected number comes from the library's call.

CASES = 40  # random cases per departure
# JAX compiles every operation anew for each shape (about 0.5 s each): the
# random cases vary the values, within a few shapes.
SHAPES = ((16, 5), (1, 3))


def same(ours, theirs, rtol=1e-12):
    """Equal to rtol (losses near 0 to 1e-12 absolute, as in test_parity), NaN where theirs is NaN,
    inf where theirs is inf."""
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64),
                               rtol=rtol, atol=1e-12 if rtol < 1e-6 else 1e-6, equal_nan=True)


def masked_logits(rng, n, c, fraction=0.25):
    """Random logits with -inf (masked classes) in some entries, at least one finite class a row."""
    logits = rng.normal(size=(n, c)) * rng.choice([0.5, 3.0, 30.0])
    masked = rng.random((n, c)) < fraction
    masked[masked.all(axis=1), 0] = False
    logits[masked] = -np.inf
    return logits


def keras_sparse(logits, labels, reduction, sample_weight=None, ignore=None, from_logits=True, dtype="float64"):
    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=from_logits, ignore_class=ignore, reduction=reduction, dtype=dtype
    )
    return np.asarray(loss(labels, logits, sample_weight=sample_weight))


@pytest.mark.parametrize("seed", range(CASES))
def test_keras_gives_nan_for_a_masked_class_as_keras_does(seed):
    """Keras sums one-hot × log-softmax: a -inf logit outside the target is 0 × -inf = NaN."""
    rng = np.random.default_rng(seed)
    n, c = SHAPES[seed % len(SHAPES)]
    logits = masked_logits(rng, n, c)
    labels = rng.integers(0, c, size=n)
    labels[rng.random(n) < 0.2] = -100
    sample = rng.uniform(0.1, 3.0, size=n) if seed % 2 else None
    per_row = keras_sparse(logits, labels, None, sample, ignore=-100)
    for backend in ("numpy", "torch"):
        same(ce(logits, labels, convention="keras", reduction="none", sample_weight=sample, backend=backend).losses, per_row)
    for ours, theirs in (("mean", "sum_over_batch_size"), ("sum", "sum")):
        result = ce(logits, labels, convention="keras", reduction=ours, sample_weight=sample)
        same(result.loss, keras_sparse(logits, labels, theirs, sample, ignore=-100))
    nan_rows = int(np.isnan(per_row).sum())
    warned = [w for w in ce(logits, labels, convention="keras").warnings if "NaN" in w]
    assert warned == ([f"{nan_rows} of {n} rows have a -inf logit outside the target class: their loss is NaN, as "
                       "keras.losses.CategoricalCrossentropy gives (it sums one-hot × log-softmax over every class, "
                       "and 0 × -inf is NaN)"] if nan_rows else [])
    # smoothed or soft targets put mass on every class: CategoricalCrossentropy gives inf, or NaN where q is 0
    if seed % 2:
        labels, target, smoothing = labels.clip(0), np.eye(c)[labels.clip(0)], 0.1
    else:
        raw = rng.random((n, c)) * (rng.random((n, c)) < 0.7)
        raw[raw.sum(axis=1) == 0, 0] = 1.0
        labels = target = raw / raw.sum(axis=1, keepdims=True)
        smoothing = 0.0
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing, reduction=None, dtype="float64")
    same(ce(logits, labels, convention="keras", label_smoothing=smoothing, reduction="none").losses,
         np.asarray(loss(target, logits)))


def test_keras_masked_class_in_the_cli_is_nan_with_a_warning(tmp_path):
    logits = np.array([[1.0, -np.inf, 0.5], [0.3, 0.2, 0.1]])
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    expected = keras_sparse(logits, np.array([0, 1]), "sum_over_batch_size")
    assert np.isnan(expected)
    result = xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "--convention", "keras", "-f", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["nan"] is True
    assert result.stderr.count("\n") == 1 and "xent: warning: 1 of 2 rows have a -inf logit" in result.stderr
    assert "keras.losses.CategoricalCrossentropy" in result.stderr
    # torch (and optax's integer-label form) pick log p of the target alone: finite
    assert np.isfinite(ce(logits, np.array([0, 1])).loss)
    same(ce(logits, np.array([0, 1]), convention="optax", reduction="none").losses,
         optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits), jnp.array([0, 1])))


def random_log_probs(rng, n, c, masked=0.0):
    """log p of probabilities that need not sum to 1 (as a model's log-probabilities often do not quite)."""
    probabilities = rng.uniform(0.01, 1.0, size=(n, c)) * rng.uniform(0.3, 1.0, size=(n, 1))
    probabilities /= probabilities.sum(axis=1, keepdims=True) * rng.choice([1.0, 1.02, 1.5, 3.0])
    log_probs = np.log(probabilities)
    if masked:
        hidden = rng.random((n, c)) < masked
        hidden[hidden.all(axis=1), 0] = False
        log_probs[hidden] = -np.inf
    return log_probs


@pytest.mark.parametrize("seed", range(CASES))
def test_optax_renormalises_log_probabilities(seed):
    """optax takes log-probabilities as logits: log_softmax renormalises them."""
    rng = np.random.default_rng(2000 + seed)
    n, c = SHAPES[seed % len(SHAPES)]
    log_probs = random_log_probs(rng, n, c, masked=0.2 if seed % 3 == 0 else 0.0)
    labels = rng.integers(0, c, size=n)
    theirs = np.asarray(optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(log_probs), jnp.asarray(labels)))
    for backend in ("numpy", "torch"):
        same(ce(log_probs, labels, input="log-probs", convention="optax", reduction="none", backend=backend).losses, theirs)
    same(ce(log_probs, labels, input="log-probs", convention="optax").loss, theirs.mean())
    smoothing = 0.2
    smoothed = optax.smooth_labels(jnp.asarray(np.eye(c)[labels]), smoothing)
    same(ce(log_probs, labels, input="log-probs", convention="optax", label_smoothing=smoothing, reduction="none").losses,
         optax.softmax_cross_entropy(jnp.asarray(log_probs), smoothed))
    soft = rng.dirichlet(np.ones(c), size=n)
    same(ce(log_probs, soft, input="log-probs", convention="optax", reduction="none").losses,
         optax.softmax_cross_entropy(jnp.asarray(log_probs), jnp.asarray(soft)))


def test_optax_log_probabilities_documented_example_and_warning():
    """optax's docstring logits, given as log-probabilities: the same numbers, since log_softmax renormalises."""
    logits = np.array([[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]])
    log_probs = logits - 5.0  # all <= 0, but their probabilities sum to far less than 1
    result = ce(log_probs, np.array([0, 1]), input="log-probs", convention="optax", reduction="none")
    np.testing.assert_allclose(result.losses, [0.2761, 2.9518], atol=5e-5)  # the docstring's numbers
    assert "optax.softmax_cross_entropy takes them as logits and renormalises them (log_softmax)" in result.warnings[0]
    assert result.warnings[0].startswith("2 of 2 rows of log-probabilities do not sum to 1 as probabilities (first: row 0)")


@pytest.mark.parametrize("seed", range(CASES))
def test_keras_and_sklearn_take_log_probabilities_as_they_would(seed):
    """Keras takes log-probabilities as logits (from_logits=True); scikit-learn as e^(log p), clipped."""
    rng = np.random.default_rng(3000 + seed)
    n, c = SHAPES[seed % len(SHAPES)]
    log_probs = random_log_probs(rng, n, c, masked=0.2 if seed % 3 == 0 else 0.0)
    labels = rng.integers(0, c, size=n)
    same(ce(log_probs, labels, input="log-probs", convention="keras", reduction="none").losses,
         keras_sparse(log_probs, labels, None))
    same(ce(log_probs, labels, input="log-probs", convention="keras").loss,
         keras_sparse(log_probs, labels, "sum_over_batch_size"))
    log_probs[rng.random((n, c)) < 0.1] = np.log(1e-20)  # below log eps: clipped by log_loss
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "The y_prob values do not sum to one"
        theirs = sklearn.metrics.log_loss(labels, np.exp(log_probs), labels=np.arange(c))
    same(ce(log_probs, labels, input="log-probs", convention="sklearn").loss, theirs)


def keras_weighted(logits, labels, reduction, sample_weight, ignore, input, soft=False):
    """A Keras loss with a sample weight (class_weight becomes sample_weight w[y] in fit(), so it is passed so)."""
    from_logits = input == "logits"
    if soft:
        loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits, reduction=reduction, dtype="float64")
        return np.asarray(loss(labels, logits, sample_weight=sample_weight))
    return keras_sparse(logits, labels, reduction, sample_weight, ignore=ignore, from_logits=from_logits)


@pytest.mark.parametrize("seed", range(CASES))
def test_keras_mean_with_sample_weight(seed):
    """Keras's reduction="mean_with_sample_weight": the weighted sum over the sum of the (unmasked) weights."""
    rng = np.random.default_rng(4000 + seed)
    n, c = SHAPES[seed % len(SHAPES)]
    input = ("logits", "probs")[seed % 2]
    soft = seed % 5 == 4
    logits = rng.normal(size=(n, c)) * 3 if input == "logits" else rng.dirichlet(np.ones(c), size=n)
    labels = rng.integers(0, c, size=n)
    if not soft:
        labels[rng.random(n) < 0.2] = -100
    sample = rng.uniform(0.0, 3.0, size=n) * (rng.random(n) < 0.8)
    weight = rng.uniform(0.2, 3.0, size=c) if seed % 3 else None
    if soft:
        labels = rng.dirichlet(np.ones(c), size=n)
    target_class = labels.argmax(axis=1) if soft else np.where(labels >= 0, labels, 0)
    keras_weight = sample * (1.0 if weight is None else weight[target_class])
    theirs = keras_weighted(logits, labels, "mean_with_sample_weight", keras_weight, -100, input, soft)
    result = ce(logits, labels, input=input, convention="keras", reduction="mean-with-sample-weight",
                sample_weight=sample, weight=weight)
    same(result.loss, theirs)
    assert result.reduction == "mean-with-sample-weight"
    # without sample weights it divides by the counted rows, as sum_over_batch_size does
    plain = keras_weighted(logits, labels, "mean_with_sample_weight", None, -100, input, soft)
    same(ce(logits, labels, input=input, convention="keras", reduction="mean-with-sample-weight").loss, plain)


def test_keras_mean_with_sample_weight_when_nothing_counts_and_in_the_cli(tmp_path):
    logits = np.array([[0.854, 0.698, 0.598], [0.088, 0.86, 0.018]])
    theirs = keras_sparse(logits, np.array([-1, -1]), "mean_with_sample_weight", np.array([1.0, 2.0]), ignore=-1)
    assert theirs == 0.0  # divide_no_nan
    ours = ce(logits, np.array([-1, -1]), convention="keras", ignore_index=-1, reduction="mean-with-sample-weight",
              sample_weight=[1.0, 2.0])
    assert ours.loss == 0.0
    np.save(tmp_path / "x.npy", KERAS_LOGITS)
    np.save(tmp_path / "y.npy", np.arange(3))
    sample = write_csv(tmp_path / "s.csv", [1.2, 3.4, 5.6])
    run = xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "--convention", "keras", "--reduction",
               "mean-with-sample-weight", "--sample-weight", sample, "-f", "value")
    assert run.exit_code == 0, run.stderr
    same(float(run.stdout), keras_sparse(KERAS_LOGITS, np.arange(3), "mean_with_sample_weight", np.array([1.2, 3.4, 5.6])))
    refused = assert_user_error(xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "--reduction",
                                     "mean-with-sample-weight"), contains="--convention keras")
    assert "Keras's reduction" in refused
    explained = xent("explain", tmp_path / "x.npy", tmp_path / "y.npy", "--convention", "keras", "--reduction",
                     "mean-with-sample-weight", "--sample-weight", sample, "-f", "json")
    assert explained.exit_code == 0, explained.stderr
    story = json.loads(explained.stdout)
    assert story["batch_loss"] == pytest.approx(float(run.stdout), rel=1e-12)
    assert not any("number of counted rows" in d for d in story["departures"])


@pytest.mark.parametrize("seed", range(CASES))
def test_keras_computes_in_float32_and_explain_says_so(seed):
    """Keras computes in float32 by default: xent in float32 agrees with it to float32's precision,
    and explain says so when xent computes in another dtype (optax's JAX likewise)."""
    rng = np.random.default_rng(5000 + seed)
    n, c = SHAPES[seed % len(SHAPES)]
    logits = (rng.normal(size=(n, c)) * 3).astype(np.float32)
    labels = rng.integers(0, c, size=n)
    theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(labels, logits)
    assert np.asarray(theirs).dtype == np.float32
    same(ce(logits, labels, convention="keras", reduction="none").losses, theirs, rtol=1e-5)
    for name, why in (("keras", "keras.backend.floatx() is float32"), ("optax", "jax_enable_x64")):
        double = logits.astype(np.float64)
        story = explain_row(double, labels, ce(double, labels, convention=name), n - 1, convention=name)
        notes = [d for d in story.departures if "float32" in d]
        assert len(notes) == 1 and why in notes[0] and "xent computes in float64" in notes[0], story.departures
        story = explain_row(logits, labels, ce(logits, labels, convention=name), n - 1, convention=name)
        assert not any("float32 by default" in d for d in story.departures)


def test_explain_in_the_cli_says_keras_computes_in_float32():
    text = xent("explain", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--convention", "keras").stdout
    assert "keras computes in float32 by default" in text


def test_explain_follows_keras_to_nan_and_optax_log_probabilities():
    logits = np.array([[1.0, -np.inf, 0.5], [0.3, 0.2, 0.1]])
    result = ce(logits, np.array([0, 1]), convention="keras")
    story = explain_row(logits, np.array([0, 1]), result, 0, convention="keras")
    assert np.isnan(story.loss) and np.isnan(story.engine_loss)
    assert any("0 × -inf = NaN" in d for d in story.departures)
    log_probs = np.log(np.array([[0.5, 0.2, 0.1], [0.1, 0.1, 0.1]]))
    result = ce(log_probs, np.array([0, 2]), input="log-probs", convention="optax")
    story = explain_row(log_probs, np.array([0, 2]), result, 1, input="log-probs", convention="optax")
    assert story.loss == pytest.approx(np.log(3), rel=1e-12) == story.engine_loss
    assert any("taken as logits (log_softmax)" in d for d in story.departures)


def sklearn_or_error(labels, probabilities, classes, sample_weight, normalize):
    """log_loss's value, or the exception it raises. Ignored rows (-100) are left out, as a
    scikit-learn user would drop them; the columns are the classes (labels=range(C))."""
    kept = labels != -100
    weight = None if sample_weight is None else sample_weight[kept]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return sklearn.metrics.log_loss(labels[kept], probabilities[kept], labels=np.arange(classes),
                                            sample_weight=weight, normalize=normalize)
    except (ValueError, ZeroDivisionError) as error:
        return error


@pytest.mark.parametrize("seed", range(CASES))
def test_sklearn_raises_where_log_loss_raises(seed):
    """Degenerate batches: all ignored, all-zero weights, weights summing to 0, one class. xent refuses
    exactly where log_loss raises, and agrees with it everywhere else."""
    rng = np.random.default_rng(6000 + seed)
    n = int(rng.integers(1, 12))
    c = 1 if seed % 8 == 7 else int(rng.integers(2, 5))
    probabilities = rng.dirichlet(np.ones(c), size=n)
    labels = rng.integers(0, c, size=n)
    kind = seed % 8
    sample = None
    if kind == 1:
        labels[:] = -100  # every row ignored
    elif kind == 2:
        sample = np.zeros(n)  # all-zero weights
    elif kind == 3 and n > 1:
        sample = rng.uniform(0.5, 2.0, size=n)
        sample[-1] = -math.fsum(sample[:-1])  # weights summing to 0 (not all zero)
    elif kind == 4:
        labels[:] = labels[0]  # a single class in the labels, two or more columns: fine with labels=
    elif kind == 5:
        sample = rng.uniform(0.0, 2.0, size=n) * (rng.random(n) < 0.5)
        labels[rng.random(n) < 0.3] = -100
    for reduction, normalize in (("mean", True), ("sum", False)):
        theirs = sklearn_or_error(labels, probabilities, c, sample, normalize)
        if isinstance(theirs, Exception):
            with pytest.raises(xentcli.XentError, match="sklearn.metrics.log_loss"):
                ce(probabilities, labels, input="probs", convention="sklearn", sample_weight=sample, reduction=reduction)
        else:
            ours = ce(probabilities, labels, input="probs", convention="sklearn", sample_weight=sample, reduction=reduction)
            same(ours.loss, theirs)


def test_sklearn_refusals_read_well_and_name_the_reason(tmp_path):
    probabilities = np.array([[0.3, 0.7], [0.6, 0.4]])
    with pytest.raises(ValueError, match="at least one non-zero"):
        sklearn.metrics.log_loss([0, 1], probabilities, sample_weight=[0.0, 0.0])
    np.save(tmp_path / "p.npy", probabilities)
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    zero = write_csv(tmp_path / "zero.csv", [0.0, 0.0])
    line = assert_user_error(xent("compute", tmp_path / "p.npy", tmp_path / "y.npy", "--input", "probs",
                                  "--convention", "sklearn", "--sample-weight", zero))
    assert "every counted row has weight 0" in line and "sklearn.metrics.log_loss refuses all-zero sample weights" in line
    with pytest.raises(ValueError, match="only one label"):  # the documented rule: two or more labels
        sklearn.metrics.log_loss([0, 0], [[1.0], [1.0]])
    np.save(tmp_path / "one.npy", np.ones((2, 1)))
    np.save(tmp_path / "zeros.npy", np.zeros(2, dtype=int))
    line = assert_user_error(xent("compute", tmp_path / "one.npy", tmp_path / "zeros.npy", "--input", "probs",
                                  "--convention", "sklearn"))
    assert "sklearn.metrics.log_loss refuses labels of a single class" in line  # one column: a binary task
    assert ce(np.ones((2, 1)), np.zeros(2, dtype=int), input="probs").loss == pytest.approx(0.0, abs=1e-15)  # torch
    ignored = np.full(2, -100)
    with pytest.raises(xentcli.XentError, match="refuses an empty batch"):
        ce(probabilities, ignored, input="probs", convention="sklearn")
    assert np.isnan(ce(probabilities, ignored, input="probs").loss)  # torch: NaN
    # reduction none has no log_loss call to follow: the per-row losses are given
    assert ce(probabilities, ignored, input="probs", convention="sklearn", reduction="none").losses.tolist() == [0, 0]
