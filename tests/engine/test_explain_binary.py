"""explain for the sigmoid family: each row's steps against the libraries, row by row.

Expected values are computed here by torch (binary_cross_entropy[_with_logits]
on the row alone), optax (sigmoid_binary_cross_entropy, sigmoid_focal_loss)
and Keras 3 on jax (binary_crossentropy, binary_focal_crossentropy).
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from xentcli import binary_cross_entropy  # noqa: E402
from xentcli.engine.explain_binary import explain_binary_row  # noqa: E402
from xentcli.render import explain_binary as render  # noqa: E402

jax.config.update("jax_enable_x64", True)


def batch(seed: int, classes: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(12, classes)) * rng.choice([0.5, 4.0, 40.0])
    return x, rng.integers(0, 2, size=(12, classes)).astype(np.float64)


def explained(x, y, row, **options):
    weight, pos_weight, sample_weight = (options.get(k) for k in ("weight", "pos_weight", "sample_weight"))
    result = binary_cross_entropy(x, y, **options)
    e = explain_binary_row(x, y, result, row, weight=weight, pos_weight=pos_weight,
                           sample_weight=None if sample_weight is None else sample_weight[row])
    return e, result


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("classes", [1, 4])
def test_torch_rows_with_logits_and_probabilities(seed, classes):
    x, y = batch(seed, classes)
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0.5, 3, size=classes)
    weight = rng.uniform(0.5, 2, size=2 if classes == 1 else classes)
    p = 1 / (1 + np.exp(-x))
    for row in (0, 5, -1):
        e, _ = explained(x, y, row, pos_weight=pos, weight=weight)
        w = weight[y[row].astype(int)] if classes == 1 else weight
        theirs = F.binary_cross_entropy_with_logits(torch.tensor(x[row]), torch.tensor(y[row]), weight=torch.tensor(w),
                                                    pos_weight=torch.tensor(pos), reduction="sum")
        assert e.loss == pytest.approx(float(theirs), rel=1e-12)
        assert e.second_route == pytest.approx(e.loss, rel=1e-12) and e.engine_loss == pytest.approx(e.loss, rel=1e-12)
        e, _ = explained(p, y, row, input="probs")
        theirs = F.binary_cross_entropy(torch.tensor(p[row]), torch.tensor(y[row]), reduction="sum")
        assert e.loss == pytest.approx(float(theirs), rel=1e-12) and e.engine_loss == pytest.approx(e.loss, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("gamma,alpha", [(None, None), (2.0, None), (1.5, 0.25)])
def test_optax_rows(seed, gamma, alpha):
    x, y = batch(seed, 3)
    for row in (1, 7):
        e, _ = explained(x, y, row, convention="optax", focal_gamma=gamma, focal_alpha=alpha)
        if gamma is None:
            theirs = optax.sigmoid_binary_cross_entropy(x[row], y[row])
        else:
            theirs = optax.losses.sigmoid_focal_loss(x[row], y[row], alpha=alpha, gamma=gamma)
        assert e.loss == pytest.approx(float(np.sum(theirs)), rel=1e-12, abs=1e-300)
        assert e.engine_loss == pytest.approx(e.loss, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("gamma", [None, 2.0])
def test_keras_rows_with_smoothing(seed, from_logits, gamma):
    x, y = batch(seed, 3)
    given = x if from_logits else 1 / (1 + np.exp(-x))
    kind = "logits" if from_logits else "probs"
    for row in (2, 9):
        e, _ = explained(given, y, row, convention="keras", input=kind, label_smoothing=0.2, focal_gamma=gamma)
        if gamma is None:
            theirs = keras.losses.binary_crossentropy(y[row], given[row], from_logits=from_logits, label_smoothing=0.2)
        else:
            theirs = keras.losses.binary_focal_crossentropy(y[row], given[row], gamma=gamma, from_logits=from_logits,
                                                             label_smoothing=0.2)
        assert e.loss == pytest.approx(float(theirs), rel=2e-7, abs=1e-12)  # Keras rounds in float32 (test_sigmoid)
        assert e.engine_loss == pytest.approx(e.loss, rel=1e-12)


def test_huge_logits_walk_through_without_overflow():
    x, y = np.array([[1e4], [-1e4], [3.0]]), np.array([[0.0], [0.0], [1.0]])
    e, _ = explained(x, y, 0)
    assert e.exp_neg_abs[0] == 0.0 and e.log_q[0] == -1e4 and e.loss == 1e4 and e.second_route == 1e4
    text = "\n".join(render.steps(e, 4))
    assert "nan" not in text and "inf" not in text and "= 10000.0000" in text


def test_a_multilabel_row_lists_its_costliest_classes_first():
    x, y = batch(3, 20)
    e, result = explained(x, y, 4)
    header, rows, note = render.class_table(e, 4)
    losses = [float(r[-1]) for r in rows]
    assert losses == sorted(losses, reverse=True) and len(rows) == render.MAX_CLASS_ROWS
    assert note.startswith("… 8 more classes")
    assert rows[0][0] == str(int(np.argmax(e.elements)))
    assert e.loss == pytest.approx(float(result.losses[4]), rel=1e-12)
    assert render.intro(e) == f"the costliest class, {rows[0][0]}, step by step:"


def test_the_share_and_rank_in_the_batch():
    x, y = batch(1, 1)
    e, result = explained(x, y, 3)
    assert e.share == pytest.approx(result.losses[3] / result.losses.sum())
    assert e.rank == 1 + int((result.losses > result.losses[3]).sum())
