"""xent explain: the seed's row 2, every option's story, and agreement with compute."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli
from cases import GRID, GRID_NAMES, TOLERANCE, make_case
from conftest import SAMPLES, SEED_LOG_SOFTMAX, assert_user_error, write_csv, xent
from xentcli.engine.explain import explain_row

SEED = (SAMPLES / "logits.csv", SAMPLES / "labels.csv")


def explain_json(*args, **kwargs) -> dict:
    result = xent("explain", *args, "--format", "json", **kwargs)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def explain_text(*args) -> str:
    """The explain table on a wide terminal, so that no step wraps."""
    result = xent("explain", *args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_seed_row_two():
    data = explain_json(*SEED, "--row", "2")
    assert round(data["loss"], 4) == 0.9350
    assert data["max"] == pytest.approx(0.0933)
    assert data["target"] == 2 and data["rank"] == 3 and data["rows"] == 3
    # The notebook's log-softmax row 2, to its 4 printed decimals.
    np.testing.assert_allclose(data["log_softmax"], SEED_LOG_SOFTMAX[2], atol=1e-4)
    np.testing.assert_allclose(data["shifted"], np.array(data["logits"]) - 0.0933, atol=1e-15)
    assert data["sum_exp"] == pytest.approx(sum(data["exp"]))
    assert round(data["batch_loss"], 4) == 2.0616
    assert data["share"] == pytest.approx(data["loss"] / data["batch_sum"])
    for key in ("second_route", "torch_loss", "engine_loss"):
        assert data[key] == pytest.approx(data["loss"], rel=1e-12)


def test_bundled_example_without_files():
    result = xent("explain", "--row", "2", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "bundled 3×5 example" in result.stderr
    for text in ("m = max x = 0.0933", "-0.9350", "loss = -log p_target = 0.9350", "rank 3 of 3"):
        assert text in result.stdout


def test_negative_row_counts_from_the_end():
    assert explain_json(*SEED, "--row", "-1")["row"] == 2


@pytest.mark.parametrize("row", ["3", "-4"])
def test_row_out_of_range(row):
    assert_user_error(xent("explain", *SEED, "--row", row), contains="the batch has 3 rows (0..2, or -3..-1)")


@pytest.mark.parametrize(GRID_NAMES, GRID)
def test_explain_agrees_with_compute_and_torch(weighted, ignore_index, smoothing, reduction, soft, kdim, dtype):
    case = (weighted, ignore_index, smoothing, reduction, soft, kdim, dtype)
    logits, target, weight = make_case(case)
    options = dict(weight=weight, ignore_index=-100 if ignore_index is None else ignore_index, label_smoothing=smoothing)
    result = xentcli.cross_entropy(logits, target, reduction=reduction, **options)
    rows = {0, result.rows - 1} | set(np.flatnonzero(result.ignored_mask)[:1].tolist())
    for row in rows:
        e = explain_row(logits, target, result, row, **options)
        rtol = TOLERANCE[dtype]
        assert e.loss == pytest.approx(result.losses[row], rel=rtol, abs=1e-6)
        assert e.second_route == pytest.approx(e.loss, rel=1e-9, abs=1e-12)
        assert e.torch_loss == pytest.approx(e.loss, rel=rtol, abs=1e-6)
        assert e.ignored == bool(result.ignored_mask[row])


def test_weights_change_the_story():
    text = explain_text(*SEED, "--row", "0", "--weight", "1,1,1,2,1")
    assert "w_target · (-log p_target) = 2.0000 × 3.4055 = 6.8110" in text
    assert "Σ w_target" in text


def test_label_smoothing_shows_both_terms():
    data = explain_json(*SEED, "--row", "1", "--label-smoothing", "0.1")
    logits = np.loadtxt(SEED[0], delimiter=",")
    expected = F.cross_entropy(torch.from_numpy(logits), torch.tensor([3, 0, 2]), label_smoothing=0.1, reduction="none")
    assert data["loss"] == pytest.approx(float(expected[1]), rel=1e-12)
    assert data["smoothing_term"] == pytest.approx(-sum(data["log_softmax"]), rel=1e-12)
    table = explain_text(*SEED, "--row", "1", "--label-smoothing", "0.1")
    assert "smoothing term" in table and "(1 - ε)·NLL + ε/C·smoothing" in table


def test_soft_labels_sum_over_classes():
    data = explain_json(SAMPLES / "logits.csv", SAMPLES / "soft_labels.csv", "--row", "0")
    assert data["target"] is None and data["soft_labels"] == [0, 0, 0.1, 0.9, 0]
    assert data["loss"] == pytest.approx(sum(data["soft_terms"]), rel=1e-12)
    assert "a sum over every class" in explain_text(SAMPLES / "logits.csv", SAMPLES / "soft_labels.csv")


def test_ignored_row_says_why_it_counts_zero(tmp_path):
    labels = write_csv(tmp_path / "y.csv", [3, -100, 2])
    data = explain_json(SEED[0], labels, "--row", "1")
    assert data["ignored"] is True and data["loss"] == 0
    table = explain_text(SEED[0], labels, "--row", "1")
    assert "contributes 0 to the sum" in table and "left out of the mean's denominator" in table


@pytest.mark.parametrize("kind,marker", [("probs", "clipped to [eps, 1 - eps]"), ("log-probs", "log-probabilities")])
def test_probability_inputs(tmp_path, kind, marker):
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    values = probs if kind == "probs" else np.log(probs)
    path = write_csv(tmp_path / "p.csv", values)
    labels = write_csv(tmp_path / "y.csv", [0, 2])
    data = explain_json(path, labels, "--input", kind, "--row", "1")
    assert data["loss"] == pytest.approx(-np.log(0.8), rel=1e-12)
    assert data["max"] is None and data["exp"] is None
    assert marker in explain_text(path, labels, "--input", kind, "--row", "1")


def test_extra_dimensions_name_the_position():
    data = explain_json(SAMPLES / "lm_logits.npy", SAMPLES / "lm_tokens.npy", "--class-axis", "-1", "--row", "6")
    assert data["index"] == [1, 2]
    assert "position (1, 2)" in explain_text(
        SAMPLES / "lm_logits.npy", SAMPLES / "lm_tokens.npy", "--class-axis", "-1", "--row", "6"
    )


def test_class_names_in_the_story():
    text = explain_text(SAMPLES / "animals.csv", "--label-col", "label", "--row", "1")
    assert "target dog (1)" in text and "dog ◀ target" in text


def test_many_classes_show_top_k_and_the_rest(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(2, 50_000)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.array([7, 42]))
    result = xent("explain", tmp_path / "x.npy", tmp_path / "y.npy", "--row", "1")
    assert result.exit_code == 0, result.stderr
    assert "42 ◀ target" in result.stdout and "49989 more classes" in result.stdout  # the top 10 and the target
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_markdown():
    text = explain_text(*SEED, "--row", "2", "--format", "markdown")
    assert text.startswith("### row 2 of 3")
    assert "| class | logit x |" in text
    assert "5. loss = -log p_target = 0.9350" in text


def test_table_fits_80_columns():
    result = xent("explain", *SEED, "--row", "2")
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_keras_nan_row_is_explained_not_contradicted(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1.0, -np.inf, 0.5], [0.2, 0.3, 0.1]]))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    result = xent("explain", tmp_path / "x.npy", tmp_path / "y.npy", "--row", "0", "--convention", "keras")
    assert result.exit_code == 0
    import re

    steps = [re.sub(r"^\d+\. ", "", line) for line in result.stdout.splitlines() if re.match(r"^\d+\. ", line)]
    assert len(steps) >= 5 and not any(step.startswith("loss = -log p_target") for step in steps)
    assert "0 × -inf = NaN" in " ".join(result.stdout.split())
