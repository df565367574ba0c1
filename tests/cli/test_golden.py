"""Golden outputs at a fixed width (100 columns, NO_COLOR), in tests/data/.

The files pin the layout byte for byte; every number in them is checked
here against torch on the seed batch, so a golden file cannot carry a
wrong number that the code once printed."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import DATA, SAMPLES, SEED_LOGITS, SEED_LOSS, SEED_TARGETS, xent

GOLDEN_ENV = {"COLUMNS": "100", "NO_COLOR": "1"}


def seed_torch():
    logits = torch.tensor(SEED_LOGITS, dtype=torch.float64)
    target = torch.tensor(SEED_TARGETS)
    return F.softmax(logits, dim=1).numpy(), F.cross_entropy(logits, target, reduction="none").numpy()


def test_the_seed_table_is_the_golden_one():
    result = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", env=GOLDEN_ENV)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (DATA / "seed_table.txt").read_text(encoding="utf-8")


def test_the_golden_table_holds_torchs_numbers():
    text = (DATA / "seed_table.txt").read_text(encoding="utf-8")
    probabilities, losses = seed_torch()
    rows = [line.split() for line in text.splitlines()[2:5]]
    for row, (cells, p, loss) in enumerate(zip(rows, probabilities, losses)):
        assert cells[0] == str(row) and cells[1] == str(SEED_TARGETS[row])
        assert [float(c) for c in cells[2:7]] == [round(float(v), 4) for v in p]
        assert float(cells[7]) == round(-float(loss), 4) and float(cells[8]) == round(float(loss), 4)
        assert cells[9] == str(int(np.argmax(p)))
    mean = float(losses.mean())
    assert round(mean, 4) == SEED_LOSS
    summary = dict(re.findall(r"^(loss \(mean\)|sum|perplexity)\s+(\S+)", text, re.MULTILINE))
    assert float(summary["loss (mean)"]) == round(mean, 4)
    assert float(summary["sum"]) == round(float(losses.sum()), 4)
    assert float(summary["perplexity"]) == pytest.approx(math.exp(mean), abs=5e-4)
    assert f"({mean / math.log(2):.4f} bits per row, mean)" in text
    confidence, hits = probabilities.max(axis=1), probabilities.argmax(axis=1) == SEED_TARGETS
    ece = np.mean(np.abs(hits - confidence))  # each row alone in its bin of 15
    assert f"ECE {ece:.4f}" in text
    entropy = float(-(probabilities * np.log(probabilities)).sum(axis=1).mean())
    assert f"entropy {entropy:.4f} nats" in text


def test_the_seed_explanation_is_the_golden_one():
    result = xent("explain", "--row", "2", env=GOLDEN_ENV)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (DATA / "seed_explain_row2.txt").read_text(encoding="utf-8")


def test_the_golden_explanation_holds_torchs_numbers():
    text = (DATA / "seed_explain_row2.txt").read_text(encoding="utf-8")
    x = torch.tensor(SEED_LOGITS[2], dtype=torch.float64)
    shifted = x - x.max()
    log_p = F.log_softmax(x, dim=0)
    lines = [line for line in text.splitlines() if re.match(r"^\d ", line)]
    assert len(lines) == 5
    for c, line in enumerate(lines):
        numbers = [float(v) for v in re.findall(r"-?\d+\.\d{4}", line)]
        expected = [x[c], shifted[c], torch.exp(shifted[c]), torch.exp(log_p[c]), log_p[c]]
        assert numbers == [round(float(v), 4) for v in expected]
    assert f"Σ e^(x-m) = {float(torch.exp(shifted).sum()):.4f}" in text
    assert f"loss = -log p_target = {-float(log_p[2]):.4f}" in text
