"""Parity with torch.nn.functional.cross_entropy over every option combination.

torch is a test dependency (CI installs the CPU build): these tests must run,
never skip.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli
from cases import FLOOR, GRID, GRID_NAMES, TOLERANCE, make_case
from conftest import xent
from xentcli.engine import fast

def torch_loss(logits, target, weight, ignore_index, smoothing, reduction):
    return F.cross_entropy(
        torch.from_numpy(logits),
        torch.from_numpy(target),
        weight=None if weight is None else torch.from_numpy(weight.astype(logits.dtype)),
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
        label_smoothing=smoothing,
    ).numpy()


@pytest.mark.parametrize("path", ["kernel", "numpy"])
@pytest.mark.parametrize(GRID_NAMES, GRID)
def test_numpy_engine_matches_torch(weighted, ignore_index, smoothing, reduction, soft, kdim, dtype, path, monkeypatch):
    """On the fused C kernel where it applies, and on numpy alone."""
    if path == "numpy":
        monkeypatch.setattr(fast, "_kernel", None)
    case = (weighted, ignore_index, smoothing, reduction, soft, kdim, dtype)
    logits, target, weight = make_case(case)
    expected = torch_loss(logits, target, weight, ignore_index, smoothing, reduction)
    result = xentcli.cross_entropy(
        logits,
        target,
        weight=weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
        label_smoothing=smoothing,
    )
    rtol = TOLERANCE[dtype]
    if reduction == "none":
        assert result.loss is None
        np.testing.assert_allclose(result.losses.reshape(expected.shape), expected, rtol=rtol, atol=FLOOR[dtype])
    else:
        assert result.loss == pytest.approx(float(expected), rel=rtol, nan_ok=True)


def test_soft_labels_refuse_ignore_index():
    logits = np.zeros((2, 3))
    soft = np.full((2, 3), 1 / 3)
    with pytest.raises(RuntimeError):
        F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(soft), ignore_index=1)
    with pytest.raises(xentcli.XentError, match="ignore-index"):
        xentcli.cross_entropy(logits, soft, ignore_index=1)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_all_ignored_gives_torchs_nan_or_zero(reduction):
    logits = np.random.default_rng(0).normal(size=(4, 3))
    target = np.full(4, -100)
    expected = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), reduction=reduction))
    result = xentcli.cross_entropy(logits, target, reduction=reduction)
    assert result.loss == pytest.approx(expected, nan_ok=True)
    if reduction == "mean":
        assert np.isnan(result.loss) and any("ignored" in w for w in result.warnings)


@pytest.mark.parametrize("scale", [1e4, 1e6, 1e30])
def test_extreme_logits_are_stable(scale):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(16, 7)) * scale
    target = rng.integers(0, 7, size=16)
    expected = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target)))
    assert np.isfinite(expected)
    assert xentcli.cross_entropy(logits, target).loss == pytest.approx(expected, rel=1e-9)


def test_minus_inf_masks_a_class_as_in_torch():
    logits = np.array([[1.0, -np.inf, 2.0], [-np.inf, 0.5, 0.0]])
    target = np.array([0, 2])
    for smoothing in (0.0, 0.2):
        expected = float(
            F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), label_smoothing=smoothing)
        )
        got = xentcli.cross_entropy(logits, target, label_smoothing=smoothing).loss
        assert got == pytest.approx(expected, rel=1e-12)  # inf with smoothing, as in torch


def test_class_axis_last_matches_torch_on_moved_axis():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(3, 5, 11))  # (batch, seq, vocab)
    target = rng.integers(0, 11, size=(3, 5))
    expected = float(F.cross_entropy(torch.from_numpy(logits).permute(0, 2, 1), torch.from_numpy(target)))
    assert xentcli.cross_entropy(logits, target, class_axis=-1).loss == pytest.approx(expected, rel=1e-12)


def test_single_unbatched_row():
    logits = np.array([0.2, -1.0, 3.0])
    expected = float(F.cross_entropy(torch.from_numpy(logits), torch.tensor(1)))
    assert xentcli.cross_entropy(logits, np.array(1)).loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_log_probs_input_is_nll_loss(weighted, smoothing):
    rng = np.random.default_rng(3)
    log_probs = np.log(rng.dirichlet(np.ones(6), size=20))
    target = rng.integers(0, 6, size=20)
    weight = rng.uniform(0.5, 2, size=6) if weighted else None
    tw = None if weight is None else torch.from_numpy(weight)
    # log_softmax of normalised log-probabilities is the identity, so
    # cross_entropy on them is nll_loss (plus torch's smoothing term).
    expected = float(F.cross_entropy(torch.from_numpy(log_probs), torch.from_numpy(target), weight=tw, label_smoothing=smoothing))
    if smoothing == 0:
        assert expected == pytest.approx(float(F.nll_loss(torch.from_numpy(log_probs), torch.from_numpy(target), weight=tw)), rel=1e-12)
    got = xentcli.cross_entropy(log_probs, target, weight=weight, label_smoothing=smoothing, input="log-probs").loss
    assert got == pytest.approx(expected, rel=1e-9)


def test_probs_input_is_sklearn_log_loss():
    """scikit-learn's log_loss: clip to [eps, 1 - eps], then the mean NLL."""
    probs = np.array([[0.0, 1.0, 0.0], [0.25, 0.25, 0.5], [0.1, 0.6, 0.3]])
    target = np.array([0, 2, 1])
    eps = np.finfo(np.float64).eps
    by_hand = -np.mean(np.log(np.clip(probs, eps, 1 - eps))[np.arange(3), target])
    got = xentcli.cross_entropy(probs, target, input="probs")
    assert got.loss == pytest.approx(by_hand, rel=1e-12)
    assert np.isfinite(got.loss) and not got.warnings


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--weight", "0.5,1,2,1,1"],
        ["--ignore-index", "1", "--reduction", "sum"],
        ["--label-smoothing", "0.2", "--weight", "1,2,3,4,5"],
    ],
)
def test_cli_json_matches_torch(tmp_path, options):
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(25, 5)).astype(np.float32)
    target = rng.integers(0, 5, size=25)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", target)
    result = xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "--format", "json", *options)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    args = dict(zip(options[::2], options[1::2]))
    weight = np.array([float(v) for v in args["--weight"].split(",")], dtype=np.float32) if "--weight" in args else None
    expected = torch_loss(
        logits, target, weight, int(args.get("--ignore-index", -100)),
        float(args.get("--label-smoothing", 0)), args.get("--reduction", "mean"),
    )
    assert data["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert data["dtype"] == "float32"
