"""ROC AUC, average precision and the Brier score against scikit-learn itself."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from xentcli.engine.ranking import ScoredRows, average_precision, brier, roc_auc

SKLEARN = {roc_auc: roc_auc_score, average_precision: average_precision_score, brier: brier_score_loss}
RANKING = [roc_auc, average_precision]


def assert_close(ours, theirs):
    assert math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-15), (ours, theirs)


def make_case(seed, rows, tied, weighted):
    """Scores in [0, 1] (rounded to 1 decimal when tied), labels with both classes
    of nonzero weight, weights with some zeros."""
    rng = np.random.default_rng(seed)
    positive = rng.random(rows) < rng.uniform(0.1, 0.9)
    positive[:2] = [True, False]
    scores = np.clip(rng.normal(0.5 + 0.15 * positive, 0.25), 0, 1)
    if tied:
        scores = np.round(scores, 1)
    weights = None
    if weighted:
        weights = rng.exponential(size=rows) * (rng.random(rows) > 0.2)
        weights[:2] = [0.5, 2.0]
    return scores, positive, weights


# Docstring examples of scikit-learn 1.9


def test_roc_auc_docstring_example():
    X, y = load_breast_cancer(return_X_y=True)
    clf = LogisticRegression(solver="newton-cholesky", random_state=0).fit(X, y)
    for scores in (clf.predict_proba(X)[:, 1], clf.decision_function(X)):
        assert_close(roc_auc(scores, y == 1), roc_auc_score(y, scores))
        assert round(roc_auc(scores, y == 1), 2) == 0.99


def test_roc_curve_docstring_example():
    # roc_curve(y, scores, pos_label=2) then auc(fpr, tpr): 0.75
    y, scores = np.array([1, 1, 2, 2]), np.array([0.1, 0.4, 0.35, 0.8])
    assert roc_auc(scores, y == 2) == 0.75


def test_average_precision_docstring_example():
    y_true, y_scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    assert_close(average_precision(y_scores, y_true), 5 / 6)
    assert_close(average_precision(y_scores, y_true), average_precision_score(y_true, y_scores))


def test_brier_docstring_example():
    y_true = np.array([0, 1, 1, 0])
    y_true_categorical = np.array(["spam", "ham", "ham", "spam"])
    y_prob = np.array([0.1, 0.9, 0.8, 0.3])
    assert_close(brier(y_prob, y_true), 0.0375)
    assert_close(brier(1 - y_prob, y_true == 0), 0.0375)
    assert_close(brier(y_prob, y_true_categorical == "ham"), 0.0375)
    assert brier(y_prob > 0.5, y_true) == 0.0


# Random cases


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("tied", [False, True], ids=["continuous", "tied"])
@pytest.mark.parametrize("rows", [2, 3, 17, 250, 2000])
@pytest.mark.parametrize("seed", range(4))
def test_random_cases_match_sklearn(seed, rows, tied, weighted):
    scores, positive, weights = make_case(seed, rows, tied, weighted)
    for ours, theirs in SKLEARN.items():
        assert_close(ours(scores, positive, weights), theirs(positive, scores, sample_weight=weights))


def test_ties_count_one_half():
    # Every positive/negative pair tied: AUC 1/2; AP the positive share, at its one threshold.
    scores, positive = np.array([0.3, 0.3, 0.3, 0.3]), np.array([1, 0, 0, 0])
    assert roc_auc(scores, positive) == 0.5
    assert average_precision(scores, positive) == 0.25


def test_zero_weight_rows_change_nothing():
    scores, positive, weights = make_case(5, 300, tied=True, weighted=True)
    kept = weights != 0
    for metric in SKLEARN:
        assert_close(metric(scores, positive, weights), metric(scores[kept], positive[kept], weights[kept]))


# Edge cases


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_only_gives_nan_roc_auc(label):
    scores = np.array([0.2, 0.7, 0.4])
    assert math.isnan(roc_auc(scores, np.full(3, label)))
    with pytest.warns(UserWarning, match="Only one class"):
        assert math.isnan(roc_auc_score(np.full(3, label), scores))


def test_class_of_zero_weight_gives_nan_roc_auc():
    assert math.isnan(roc_auc(np.array([0.2, 0.7, 0.4]), np.array([1, 0, 0]), np.array([0.0, 1.0, 1.0])))


def test_no_positive_gives_nan_average_precision():
    # scikit-learn warns and returns 0 here.
    scores, positive = np.array([0.2, 0.7, 0.4]), np.zeros(3, dtype=bool)
    assert math.isnan(average_precision(scores, positive))
    with pytest.warns(UserWarning, match="No positive class"):
        assert average_precision_score(positive, scores) == 0.0
    assert math.isnan(average_precision(scores, np.array([1, 0, 0]), np.array([0.0, 1.0, 1.0])))


def test_zero_total_weight_gives_nan_brier():
    assert math.isnan(brier(np.array([0.2, 0.7]), np.array([1, 0]), np.zeros(2)))
    assert math.isnan(brier(np.empty(0), np.empty(0)))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # scikit-learn's own finiteness check
@pytest.mark.parametrize("metric", RANKING)
def test_infinite_scores_rank_like_finite_ones(metric):
    # scikit-learn rejects infinite scores; they must rank (and tie) as the extremes.
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=200), 1)
    positive = rng.random(200) < 0.4
    scores[:30] = np.inf
    scores[30:50] = -np.inf
    finite = np.where(np.isposinf(scores), 100.0, np.where(np.isneginf(scores), -100.0, scores))
    assert_close(metric(scores, positive), SKLEARN[metric](positive, finite))
    with pytest.raises(ValueError, match="infinity"):
        SKLEARN[metric](positive, scores)


def test_all_scores_infinite_and_tied():
    scores, positive = np.full(4, np.inf), np.array([1, 0, 1, 0])
    assert roc_auc(scores, positive) == 0.5
    assert average_precision(scores, positive) == 0.5


def test_float32_input():
    # 1 + k * 1e-9 are distinct in float64 and one tie in float32.
    rng = np.random.default_rng(11)
    positive = rng.random(500) < 0.5
    scores = (rng.integers(0, 3, 500) + rng.integers(0, 5, 500) * 1e-9 + 1).astype(np.float32)
    weights = rng.random(500).astype(np.float32)
    assert len(np.unique(scores)) == 3
    for metric in RANKING:
        assert_close(metric(scores, positive), SKLEARN[metric](positive, scores))
        assert_close(metric(scores, positive, weights), SKLEARN[metric](positive, scores, sample_weight=weights))
    probabilities = rng.random(500).astype(np.float32)
    # scikit-learn keeps float32 probabilities in float32; these compute in float64.
    assert_close(brier(probabilities, positive), brier_score_loss(positive, probabilities.astype(np.float64)))


@pytest.mark.parametrize("metric", RANKING)
def test_nan_score_is_an_error(metric):
    with pytest.raises(ValueError, match="NaN"):
        metric(np.array([0.1, np.nan, 0.3]), np.array([1, 0, 1]))


def test_mismatched_shapes_are_an_error():
    with pytest.raises(ValueError, match="same length"):
        roc_auc(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="same length"):
        brier(np.zeros(3), np.zeros(3), np.ones(2))


# Rows gathered in parts


def test_parts_give_the_metrics_of_the_whole():
    scores, positive, weights = make_case(2, 900, tied=True, weighted=True)
    bounds = [0, 100, 101, 600, 900]
    parts = [ScoredRows.of(scores[a:b], positive[a:b], weights[a:b]) for a, b in zip(bounds, bounds[1:])]
    gathered = sum(parts, ScoredRows())
    assert_close(gathered.roc_auc(), roc_auc_score(positive, scores, sample_weight=weights))
    assert_close(gathered.average_precision(), average_precision_score(positive, scores, sample_weight=weights))
    assert_close(gathered.brier(), brier_score_loss(positive, scores, sample_weight=weights))


def test_unweighted_parts_weigh_one_beside_weighted_ones():
    scores, positive, weights = make_case(4, 400, tied=True, weighted=True)
    gathered = ScoredRows.of(scores[:150], positive[:150]) + ScoredRows.of(scores[150:], positive[150:], weights[150:])
    filled = np.concatenate((np.ones(150), weights[150:]))
    assert_close(gathered.roc_auc(), roc_auc_score(positive, scores, sample_weight=filled))
    assert_close(gathered.average_precision(), average_precision_score(positive, scores, sample_weight=filled))
    assert ScoredRows.of(scores, positive).joined()[2] is None


def test_no_rows_give_nan():
    empty = ScoredRows()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(empty.roc_auc())
        assert math.isnan(empty.average_precision())
        assert math.isnan(empty.brier())
