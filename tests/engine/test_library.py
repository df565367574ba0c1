"""The library: one LossSpec for the settings that shape the number, carried by the Result."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli


def test_a_spec_gives_torch_s_number_and_travels_with_the_result():
    rng = np.random.default_rng(0)
    logits, target = rng.normal(size=(20, 4)), rng.integers(0, 4, size=20)
    target[3] = 2
    spec = xentcli.LossSpec(reduction="sum", label_smoothing=0.1, ignore_index=2)
    result = xentcli.cross_entropy(logits, target, spec=spec)
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), reduction="sum",
                               label_smoothing=0.1, ignore_index=2)
    assert result.loss == pytest.approx(float(expected), rel=1e-12)
    assert result.spec == spec
    assert result.spec.options()["xent_version"] == xentcli.__version__


def test_rows_at_gives_the_rows_of_the_whole_run():
    rng = np.random.default_rng(1)
    logits, target = rng.normal(size=(50, 5)), rng.integers(0, 5, size=50)
    weight = rng.uniform(0.5, 2, size=5)
    spec = xentcli.LossSpec(label_smoothing=0.2)
    whole = xentcli.cross_entropy(logits, target, weight=weight, spec=spec)
    positions = [0, 7, 49]
    rows, probabilities = xentcli.rows_at(logits, target, positions, whole.spec, weight=weight)
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), weight=torch.from_numpy(weight),
                               label_smoothing=0.2, reduction="none").numpy()
    assert rows.losses == pytest.approx(expected[positions], rel=1e-12)
    assert probabilities == pytest.approx(torch.softmax(torch.from_numpy(logits[positions]), 1).numpy(), rel=1e-12)


def test_many_shards_from_python_as_from_the_command_line(tmp_path):
    from xentcli.engine import shards
    from xentcli.readers import ReadOptions

    rng = np.random.default_rng(2)
    logits, target = rng.normal(size=(30, 4)), rng.integers(0, 4, size=30)
    for k in range(3):
        np.save(tmp_path / f"logits_{k + 1}.npy", logits[10 * k : 10 * k + 10])
        np.save(tmp_path / f"labels_{k + 1:02d}.npy", target[10 * k : 10 * k + 10])
    plan = shards.plan(str(tmp_path / "logits_*.npy"), str(tmp_path / "labels_*.npy"), ReadOptions())

    def engine(batch, weight, sample, part):
        return xentcli.cross_entropy(batch.logits, batch.target, weight=weight, sample_weight=sample, part=part)

    done, result = shards.run(plan, engine, notice=lambda messages: None, warn=lambda messages, prefix: None)
    assert [shard.totals()["rows"] for shard in done] == [10, 10, 10]
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target))
    assert result.loss == pytest.approx(float(expected), rel=1e-12)
