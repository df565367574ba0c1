"""The metrics around the loss, the pictures, and xent compare: each against a hand computation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli
from conftest import SAMPLES, assert_user_error, xent, xent_json
from xentcli.engine.metrics import LOSS_EDGES, MetricOptions


@pytest.fixture
def batch():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(500, 6)) * 2
    target = rng.integers(0, 6, size=500)
    target[::9] = -100
    return logits, target


def by_hand(logits, target):
    kept = target != -100
    p = torch.softmax(torch.from_numpy(logits), 1).numpy()
    losses = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), reduction="none").numpy()
    return kept, p, losses


CUDA = pytest.param("torch", "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")])


@pytest.mark.parametrize("backend,device", [("numpy", "cpu"), ("torch", "cpu"), CUDA])
def test_metrics_match_hand_computations(batch, backend, device):
    logits, target = batch
    kept, p, losses = by_hand(logits, target)
    options = MetricOptions(top_k=3, by_class=True)
    result = xentcli.cross_entropy(logits, target, metrics=options, backend=backend, device=device)
    m = result.metrics
    safe = np.where(kept, target, 0)
    assert m.mean_entropy == pytest.approx((-(p * np.log(p)).sum(1))[kept].mean(), rel=1e-10)
    confidence, correct = p.max(1), (p.argmax(1) == target) & kept
    bins = np.minimum((confidence * 15).astype(int), 14)
    ece = sum(abs(correct[kept & (bins == b)].sum() - confidence[kept & (bins == b)].sum()) for b in range(15)) / kept.sum()
    assert m.ece == pytest.approx(ece, rel=1e-10)
    top3 = (np.argsort(-logits, axis=1)[:, :3] == safe[:, None]).any(1) & kept
    assert m.top_k_accuracy == pytest.approx(top3.sum() / kept.sum())
    per_class = m.by_class()
    for c in range(6):
        rows = kept & (target == c)
        assert per_class[c]["rows"] == rows.sum()
        assert per_class[c]["mean_loss"] == pytest.approx(losses[rows].mean(), rel=1e-10)
        assert per_class[c]["accuracy"] == pytest.approx(correct[rows].mean())
    counts = np.histogram(losses[kept], bins=[*LOSS_EDGES, np.inf])[0]
    assert [b["rows"] for b in m.histogram()] == counts.tolist()
    assert sum(b["rows"] for b in m.reliability()) == kept.sum()
    assert result.bits == pytest.approx(result.mean / math.log(2))


def test_metrics_add_up_across_blocks_and_files(batch, monkeypatch):
    from xentcli.engine import backends
    from xentcli.engine import combine

    logits, target = batch
    options = MetricOptions(top_k=2, by_class=True)
    whole = xentcli.cross_entropy(logits, target, metrics=options).metrics
    monkeypatch.setattr(backends, "NUMPY_BLOCK_BYTES", 1000)
    blocked = xentcli.cross_entropy(logits, target, metrics=options).metrics
    halves = combine([xentcli.cross_entropy(logits[:250], target[:250], metrics=options),
                      xentcli.cross_entropy(logits[250:], target[250:], metrics=options)]).metrics
    for other in (blocked, halves):
        assert other.ece == pytest.approx(whole.ece, rel=1e-12)
        assert other.mean_entropy == pytest.approx(whole.mean_entropy, rel=1e-12)
        assert other.top_k_correct == whole.top_k_correct
        np.testing.assert_allclose(other.class_loss, whole.class_loss, rtol=1e-12)


def test_entropy_with_masked_classes_and_probability_inputs():
    logits = np.array([[0.0, -np.inf, 0.0], [1.0, 2.0, 3.0]])
    m = xentcli.cross_entropy(logits, np.array([0, 2]), metrics=MetricOptions()).metrics
    p2 = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    assert m.mean_entropy == pytest.approx((math.log(2) - (p2 * np.log(p2)).sum()) / 2, rel=1e-12)
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    mp = xentcli.cross_entropy(probs, np.array([0, 2]), input="probs", metrics=MetricOptions()).metrics
    assert mp.mean_entropy == pytest.approx((math.log(2) - (probs[1] * np.log(probs[1])).sum()) / 2, rel=1e-9)


def test_cli_summary_and_json_carry_the_metrics():
    result = xent("compute", SAMPLES / "animals.csv", "--label-col", "label", "--top-k", "2", "--by-class",
                  env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.stderr
    for text in ("top-2", "entropy", "ECE", "loss per row", "calibration", "mean loss", "2 bird"):
        assert text in result.stdout
    data = xent_json(SAMPLES / "animals.csv", "--label-col", "label", "--top-k", "2", "--by-class")
    assert data["metrics"]["top_k"] == 2 and len(data["metrics"]["by_class"]) == 3
    assert data["bits"] == pytest.approx(data["mean"] / math.log(2))
    value = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "-f", "value")
    assert value.stdout.count("\n") == 1


def test_save_svg_and_html(tmp_path):
    svg, html = tmp_path / "view.svg", tmp_path / "view.html"
    result = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "-f", "value",
                  "--save-svg", svg, "--save-html", html)
    assert result.exit_code == 0 and float(result.stdout) > 0
    assert svg.read_text().startswith("<svg") and "2.0616" in svg.read_text().replace("&#160;", " ")
    assert "<html" in html.read_text() and "2.0616" in html.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["view.html", "view.svg"]


@pytest.fixture
def models(tmp_path):
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, size=400)
    base = rng.normal(size=(400, 5))
    base[np.arange(400), target] += 1.0
    new = base.copy()
    new[np.arange(400), target] += 0.5
    new[:5] = rng.normal(size=(5, 5)) * 4
    for name, array in (("base", base), ("new", new), ("y", target)):
        np.save(tmp_path / f"{name}.npy", array)
    return tmp_path, base, new, target


def test_compare_reports_both_losses_the_difference_and_its_interval(models):
    folder, base, new, target = models
    result = xent("compare", folder / "base.npy", folder / "new.npy", folder / "y.npy", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    loss = lambda x: float(F.cross_entropy(torch.from_numpy(x), torch.from_numpy(target)))  # noqa: E731
    assert data["base"]["loss"] == pytest.approx(loss(base), rel=1e-12)
    assert data["new"]["loss"] == pytest.approx(loss(new), rel=1e-12)
    assert data["difference"] == pytest.approx(loss(new) - loss(base), rel=1e-12)
    assert data["interval"]["low"] < data["difference"] < data["interval"]["high"] < 0
    changes = F.cross_entropy(torch.from_numpy(new), torch.from_numpy(target), reduction="none").numpy() - \
        F.cross_entropy(torch.from_numpy(base), torch.from_numpy(target), reduction="none").numpy()
    assert data["worst_rows"][0]["row"] == int(np.argmax(changes))
    assert data["worst_rows"][0]["change"] == pytest.approx(changes.max(), rel=1e-12)


def test_bootstrap_interval_matches_a_plain_resampling(models):
    """The Poisson bootstrap's interval agrees with the classic one to within resampling noise."""
    from xentcli.engine.compare import compare

    folder, base, new, target = models
    a = xentcli.cross_entropy(base, target)
    b = xentcli.cross_entropy(new, target)
    ours = compare(a, b, resamples=4000)
    rng = np.random.default_rng(1)
    draws = [b.losses[i].mean() - a.losses[i].mean() for i in (rng.integers(0, 400, 400) for _ in range(4000))]
    low, high = np.percentile(draws, [2.5, 97.5])
    assert ours.low == pytest.approx(low, abs=0.02) and ours.high == pytest.approx(high, abs=0.02)


def test_compare_as_a_ci_gate(models):
    folder, *_ = models
    worse = xent("compare", folder / "new.npy", folder / "base.npy", folder / "y.npy", "--fail-if-worse", "0.05")
    assert worse.exit_code == 1 and "more than --fail-if-worse 0.05" in worse.stderr
    better = xent("compare", folder / "base.npy", folder / "new.npy", folder / "y.npy", "--fail-if-worse", "0")
    assert better.exit_code == 0 and "new is better (significant)" in better.stdout
    assert_user_error(xent("compare", folder / "base.npy", folder / "new.npy"), contains="compare needs LABELS")
    np.save(folder / "short.npy", np.zeros((3, 5)))
    assert_user_error(xent("compare", folder / "base.npy", folder / "short.npy", folder / "y.npy"), contains="rows")
