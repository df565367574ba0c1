"""The tricks of the language-model trade, each from its definition, written here in torch:
Gemma 2's final-logit soft-capping (transformers' Gemma2ForCausalLM: logits / cap,
tanh, * cap), temperature (logits / T), and PaLM's z-loss as T5X's
cross_entropy_with_logits adds it (z_loss * logsumexp(logits)**2 per token, then
the same mean over the counted tokens)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli
from xentcli import LossSpec
from xentcli.engine.explain import explain_row
from xentcli.engine.metrics import MetricOptions
from xentcli.errors import XentError


def batch(seed: int, rows: int = 40, classes: int = 25):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, classes)) * rng.choice([1.0, 8.0, 40.0])
    t = rng.integers(0, classes, size=rows)
    t[rng.uniform(size=rows) < 0.2] = -100
    return x, t


def reference(x, t, softcap=None, temperature=None, z_loss=0.0, sample=None, reduction="mean"):
    logits = torch.tensor(x)
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    if temperature is not None:
        logits = logits / temperature
    target = torch.tensor(t)
    kept = target != -100
    loss = F.cross_entropy(logits, target, reduction="none")
    z = z_loss * torch.logsumexp(logits, dim=-1) ** 2
    total = (loss + z) * kept
    zs = z * kept
    if sample is not None:
        total, zs = total * torch.tensor(sample), zs * torch.tensor(sample)
    if reduction == "sum":
        return float(total.sum()), float(zs.sum())
    return float(total.sum() / kept.sum()), float(zs.sum() / kept.sum())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "options",
    [{"softcap": 30.0}, {"softcap": 5.0}, {"temperature": 0.7}, {"temperature": 2.0, "softcap": 10.0},
     {"z_loss": 1e-4}, {"z_loss": 0.1, "softcap": 15.0, "temperature": 1.3}],
)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_each_trick_as_its_definition(seed, options, reduction):
    x, t = batch(seed)
    expected, z_expected = reference(x, t, reduction=reduction, **options)
    result = xentcli.cross_entropy(x, t, spec=LossSpec(reduction=reduction, **options))
    assert result.loss == pytest.approx(expected, rel=1e-12)
    # the reference path (with metrics) and the fast path give the same number
    slow = xentcli.cross_entropy(x, t, spec=LossSpec(reduction=reduction, **options), metrics=MetricOptions())
    assert slow.loss == pytest.approx(result.loss, rel=1e-13)
    if options.get("z_loss"):
        z = result.parts["z_loss"] if reduction == "sum" else result.part_mean("z_loss")
        assert z == pytest.approx(z_expected, rel=1e-12)
        assert result.cross_entropy_mean == pytest.approx(reference(x, t, options.get("softcap"),
                                                                    options.get("temperature"))[0], rel=1e-12)
        assert result.perplexity == pytest.approx(np.exp(result.cross_entropy_mean), rel=1e-12)
    else:
        assert result.parts == {}


def test_z_loss_with_sample_weights_and_in_float32():
    x, t = batch(3)
    sample = np.random.default_rng(3).uniform(0, 2, size=len(t))
    expected, _ = reference(x, t, z_loss=1e-3, sample=sample, reduction="sum")
    found = xentcli.cross_entropy(x, t, sample_weight=sample, spec=LossSpec(reduction="sum", z_loss=1e-3))
    assert found.loss == pytest.approx(expected, rel=1e-12)
    single = xentcli.cross_entropy(x.astype(np.float32), t, spec=LossSpec(z_loss=1e-3, softcap=20.0))
    assert single.loss == pytest.approx(reference(x.astype(np.float32), t, 20.0, z_loss=1e-3)[0], rel=1e-5)


def test_softcap_bounds_huge_logits():
    x = np.array([[1e4, -1e4, 0.0]])
    result = xentcli.cross_entropy(x, np.array([1]), spec=LossSpec(softcap=30.0))
    assert result.loss == pytest.approx(60.0 + np.log1p(np.exp(-30.0) + np.exp(-60.0)), rel=1e-12)


def test_explain_walks_through_the_tricks():
    x, t = batch(1, rows=6)
    t[2] = 4
    spec = LossSpec(softcap=5.0, temperature=0.8, z_loss=0.01)
    result = xentcli.cross_entropy(x, t, spec=spec)
    e = explain_row(x, t, result, 2)
    logits = torch.tanh(torch.tensor(x[2]) / 5.0) * 5.0 / 0.8
    np.testing.assert_allclose(e.logits, logits.numpy(), rtol=1e-14)
    np.testing.assert_allclose(e.given_logits, x[2])
    assert e.z_term == pytest.approx(0.01 * float(torch.logsumexp(logits, 0)) ** 2, rel=1e-12)
    assert e.loss == pytest.approx(float(result.losses[2]), rel=1e-12) == e.torch_loss


@pytest.mark.parametrize(
    "spec,message",
    [
        (LossSpec(softcap=0.0), "--softcap must be a positive number"),
        (LossSpec(temperature=-1.0), "--temperature must be a positive number"),
        (LossSpec(z_loss=-0.1), "--z-loss must be a coefficient"),
        (LossSpec(softcap=3.0, input="probs"), "act on a softmax's logits"),
    ],
)
def test_refusals(spec, message):
    x, t = batch(0, rows=3)
    with pytest.raises(XentError, match=message):
        xentcli.cross_entropy(np.abs(x) / np.abs(x).sum(1, keepdims=True), t, spec=spec)


def test_the_torch_backend_applies_them_too():
    x, t = batch(4)
    spec = LossSpec(softcap=7.0, temperature=1.5, z_loss=1e-2)
    ours = xentcli.cross_entropy(x, t, spec=spec, backend="torch")
    assert ours.backend == "torch"
    assert ours.loss == pytest.approx(reference(x, t, 7.0, 1.5, 1e-2)[0], rel=1e-12)
    assert ours.part_mean("z_loss") == pytest.approx(reference(x, t, 7.0, 1.5, 1e-2)[1], rel=1e-12)


def test_z_loss_with_class_weights_is_refused():
    x, t = batch(0, rows=5)
    with pytest.raises(XentError, match="--z-loss with --weight"):
        xentcli.cross_entropy(x, t, weight=np.ones(x.shape[1]), spec=LossSpec(z_loss=1e-4))
