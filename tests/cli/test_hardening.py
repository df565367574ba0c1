"""Nothing lost, nothing run, numbers under stress, locale traps."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli.engine.core
from conftest import SAMPLES, assert_user_error, write_csv, xent, xent_json
from xentcli.render import output


def digest(path) -> tuple[str, float]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


def test_inputs_are_never_written(tmp_path):
    logits = write_csv(tmp_path / "x.csv", np.random.default_rng(0).normal(size=(50, 4)).round(3))
    labels = write_csv(tmp_path / "y.csv", np.arange(50) % 4)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(50, 4)))
    before = {p.name: digest(p) for p in tmp_path.iterdir()}
    for args in ([logits, labels], [tmp_path / "x.npy", labels], [logits, labels, "--label-smoothing", "0.1"]):
        for fmt in ("table", "json", "csv"):
            assert xent("compute", *args, "--format", fmt).exit_code == 0
        assert xent("explain", *args, "--row", "3").exit_code == 0
    assert {p.name: digest(p) for p in tmp_path.iterdir()} == before


def test_output_file_stays_whole_when_writing_fails(tmp_path, monkeypatch):
    out = tmp_path / "loss.json"
    out.write_text("previous")

    def broken_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output.os, "replace", broken_replace)
    result = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "-f", "json", "-o", out)
    assert_user_error(result, f"{out}: cannot write")
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.json"]


def test_output_into_a_missing_folder_is_a_clear_error(tmp_path):
    result = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "-o", tmp_path / "no" / "such.json")
    assert_user_error(result, str(tmp_path / "no" / "such.json"), "cannot write")


def test_ctrl_c_exits_130_without_a_traceback():
    process = subprocess.Popen(
        [sys.executable, "-m", "xentcli", "compute", "-", str(SAMPLES / "labels.csv")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(2.0)  # start-up done: it waits for stdin
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in stderr and stderr.endswith("xent: interrupted\n")


def test_unexpected_errors_are_one_line_with_the_traceback_on_request(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(xentcli.engine.core, "run_blocks", boom)
    result = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv")
    assert result.exit_code == 70 and "Traceback" not in result.stderr
    assert result.stderr == "xent: error: internal error: RuntimeError: synthetic failure (a bug in xent: --debug shows the traceback)\n"
    assert "Traceback" in xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--debug").stderr


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_every_float_dtype_and_large_logits(tmp_path, dtype, scale):
    rng = np.random.default_rng(5)
    logits = (rng.normal(size=(64, 9)) * scale).astype(dtype)
    if dtype == np.float16 and scale > 1e3:
        logits = np.clip(logits, -6e4, 6e4).astype(dtype)
    target = rng.integers(0, 9, size=64)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", target)
    expected = float(F.cross_entropy(torch.from_numpy(logits.astype(np.float32 if dtype == np.float16 else dtype)), torch.from_numpy(target)))
    data = xent_json(tmp_path / "x.npy", tmp_path / "y.npy")
    assert data["loss"] == pytest.approx(expected, rel=1e-5 if dtype != np.float64 else 1e-12)


def test_target_on_a_masked_class_is_infinite_as_in_torch(tmp_path):
    logits = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, 0.0]])
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", np.array([1, 0]))
    expected = float(F.cross_entropy(torch.from_numpy(logits), torch.tensor([1, 0])))
    assert expected == float("inf")
    data = xent_json(tmp_path / "x.npy", tmp_path / "y.npy")
    assert data["loss"] is None and data["inf"] is True and data["nan"] is False
    value = xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "-f", "value")
    assert value.stdout == "inf\n"


def test_one_class(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[3.0], [-2.0]]))
    np.save(tmp_path / "y.npy", np.array([0, 0]))
    expected = float(F.cross_entropy(torch.tensor([[3.0], [-2.0]], dtype=torch.float64), torch.tensor([0, 0])))
    # one column is a binary task unless asked otherwise; a softmax over one class costs nothing
    assert xent_json(tmp_path / "x.npy", tmp_path / "y.npy", "--task", "multiclass")["loss"] == expected == 0.0


def test_one_row_of_a_million_classes(tmp_path):
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(1, 1_000_000)).astype(np.float32)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", np.array([123_456]))
    expected = float(F.cross_entropy(torch.from_numpy(logits), torch.tensor([123_456])))
    data = xent_json(tmp_path / "x.npy", tmp_path / "y.npy")
    assert data["loss"] == pytest.approx(expected, rel=1e-5)
    table = xent("compute", tmp_path / "x.npy", tmp_path / "y.npy")
    assert table.exit_code == 0 and "top 3" in table.stdout


def test_single_row_text_file(tmp_path):
    logits = write_csv(tmp_path / "x.csv", [[0.5, 1.5, -1.0]])
    labels = write_csv(tmp_path / "y.csv", [2])
    expected = float(F.cross_entropy(torch.tensor([[0.5, 1.5, -1.0]], dtype=torch.float64), torch.tensor([2])))
    assert xent_json(logits, labels)["loss"] == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    "text,hint",
    [
        ("1,5;2,5\n0,5;1\n", "decimal comma"),
        ("1,234.5;2\n3;4\n", "thousands separator"),
        ("1 234.5;2\n3;4\n", "thousands separator"),
    ],
)
def test_locale_traps_are_explained(tmp_path, text, hint):
    path = tmp_path / "x.csv"
    path.write_text(text)
    labels = write_csv(tmp_path / "y.csv", [0, 1])
    assert_user_error(xent("compute", path, labels), f"{path}:1:1:", hint)


def test_thousands_separators_in_comma_files_are_not_misread(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('1,234.5,2\n3,4\n')
    labels = write_csv(tmp_path / "y.csv", [0, 1])
    assert_user_error(xent("compute", path, labels), f"{path}:2:")


def test_quoted_thousands_are_refused_not_misread(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('"1,234.5",2\n3,4\n')
    labels = write_csv(tmp_path / "y.csv", [0, 1])
    result = xent("compute", path, labels)
    assert result.exit_code == 2 and "Traceback" not in result.stderr


def test_yaml_tags_of_every_kind_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for tag in ("!!python/object/new:os.system [echo]", "!!python/name:os.system", "!custom 1", "!!binary aGk="):
        (tmp_path / "xent.yaml").write_text(f"logits: {tag}\n")
        result = xent("compute")
        assert result.exit_code == 2 and "Traceback" not in result.stderr, tag


def test_json_is_valid_even_when_everything_is_odd(tmp_path):
    labels = write_csv(tmp_path / "y.csv", [-100, -100, -100])
    text = xent("compute", SAMPLES / "logits.csv", labels, "-f", "json", "--per-row").stdout
    data = json.loads(text, parse_constant=lambda token: pytest.fail(f"invalid JSON token {token}"))
    assert data["per_row"][0]["p_target"] is None and data["loss"] is None and data["nan"] is True
