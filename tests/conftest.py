"""Shared helpers: run the CLI in-process, and write input files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xentcli.cli import app

DATA = Path(__file__).parent / "data"
# Cases run per fuzz target (test_fuzz.py), reported at the end of the run.
FUZZ_CASES: dict[str, int] = {}
SAMPLES = Path(__file__).parent.parent / "sample_data"

# The seed notebook (../shared/seed): torch.randn(3, 5) as printed, targets [3, 0, 2].
SEED_LOGITS = np.array(
    [
        [0.0590, 0.3317, 1.2978, -1.3694, 0.2554],
        [0.9160, 2.4308, -1.3641, -0.4327, 0.0316],
        [-0.7676, -0.6493, 0.0933, -0.9304, -1.1471],
    ]
)
SEED_TARGETS = np.array([3, 0, 2])
SEED_LOSS = 2.0616
SEED_LOG_SOFTMAX = np.array(
    [
        [-1.9771, -1.7044, -0.7383, -3.4055, -1.7807],
        [-1.8442, -0.3295, -4.1243, -3.1929, -2.7286],
        [-1.7959, -1.6776, -0.9350, -1.9587, -2.1754],
    ]
)


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("XENT_FORMAT", raising=False)
    monkeypatch.delenv("XENT_CONFIG", raising=False)


@pytest.fixture
def streamed(monkeypatch):
    """Text parsed a chunk at a time, with tiny chunks, so that small files take the large-file path."""
    from xentcli.readers import text

    monkeypatch.setattr(text, "STREAM_BYTES", 100)
    monkeypatch.setattr(text, "STREAM_CHUNK_BYTES", 200)


def xent(*args: str, input: bytes | str | None = None, env: dict | None = None):
    """Run `xent ARGS` in-process; the result has exit_code, stdout and stderr apart."""
    return CliRunner(env=env).invoke(app, [str(a) for a in args], input=input)


def xent_json(*args: str, **kwargs) -> dict:
    """`xent compute ARGS --format json`, parsed; the run must succeed."""
    result = xent("compute", *args, "--format", "json", **kwargs)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def write_csv(path: Path, rows, header: list[str] | None = None, delimiter: str = ",") -> Path:
    lines = [delimiter.join(header)] if header else []
    lines += [delimiter.join(str(v) for v in np.atleast_1d(row)) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_user_error(result, where: str | None = None, contains: str | None = None) -> str:
    """Exit 2, exactly one `xent: error:` line naming `where`, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("xent: error:")]
    assert len(lines) == 1, result.stderr
    if where is not None:
        assert lines[0].startswith(f"xent: error: {where}"), lines[0]
    if contains is not None:
        assert contains in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


def pytest_terminal_summary(terminalreporter):
    if FUZZ_CASES:
        total = sum(FUZZ_CASES.values())
        terminalreporter.write_line(
            f"fuzz: {total} cases ran, each exited 0 or 2 with at most one error line and no traceback: "
            + ", ".join(f"{name} {count}" for name, count in sorted(FUZZ_CASES.items()))
        )


def torch_loss(logits, target, weight=None, reduction="mean"):
    """torch's F.cross_entropy in float64: the independent reference of the regression tests."""
    import torch
    import torch.nn.functional as F

    w = None if weight is None else torch.as_tensor(np.asarray(weight, dtype=np.float64))
    value = F.cross_entropy(torch.as_tensor(np.asarray(logits, dtype=np.float64)), torch.as_tensor(np.asarray(target)),
                            weight=w, reduction=reduction)
    return value.numpy() if reduction == "none" else float(value)


def error_line(result) -> str:
    """The one line of a usage error (exit 2)."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xent: error: "), result.stderr
    return lines[0]


@pytest.fixture
def six_rows():
    """Six rows of three classes and their class indices."""
    rng = np.random.default_rng(21)
    return rng.normal(size=(6, 3)) * 2, rng.integers(0, 3, size=6)

