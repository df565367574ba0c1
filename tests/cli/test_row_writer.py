"""The C writer of per-row numbers (xentcli/_format.c) against Python's own
repr and json.dumps: every float as repr writes it, on the values around
every edge of its exact range and on millions of random ones, and the four
per-row formats byte for byte as the Python writers make them."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import yaml

from conftest import xent
from xentcli.render import compute, progress
from xentcli.render.output import Streams

writer = compute._format


def test_the_writer_is_built():
    """setup.py builds it wherever a C compiler exists (CI has one); without it Python writes the rows."""
    assert writer is not None, "xentcli/_format.c was not compiled: is gcc installed?"


def written(values) -> list[str]:
    values = np.asarray(values, dtype=np.float64)
    return writer.rows((values,), ("", "\n"), "").split("\n")[:-1]


def expected(values) -> list[str]:
    return [repr(v) if math.isfinite(v) else "" for v in np.asarray(values, dtype=np.float64).tolist()]


def edges() -> list[float]:
    powers = [2.0**k for k in range(-1074, 1024, 7)] + [2.0**k for k in range(-20, 60)]
    tens = [10.0**k for k in range(-30, 30)]
    around = [np.nextafter(v, d) for v in powers + tens for d in (0.0, np.inf)]
    return [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 0.2, 0.3, 1 / 3,
            9007199254740993.0, 123456789012345.67, 1e16, 9999999999999998.0, 1e-5, 9.999999999999999e-05,
            *powers, *tens, *around, *(float(i) for i in range(-2000, 2000)), *(i / 1000 for i in range(-5000, 5000))]


@pytest.mark.parametrize("source", ["edges", "uniform", "normal", "float32", "log-uniform", "bits", "decimals"])
def test_floats_are_written_as_repr_writes_them(source):
    rng = np.random.default_rng(list(("edges", "uniform", "normal", "float32", "log-uniform", "bits", "decimals")).index(source))
    values = {
        "edges": lambda: np.array(edges()),
        "uniform": lambda: rng.random(300_000) * 3,
        "normal": lambda: rng.standard_normal(300_000) * 10,
        "float32": lambda: rng.standard_normal(300_000).astype(np.float32),
        "log-uniform": lambda: np.exp(rng.uniform(-50, 50, 300_000)) * rng.choice([-1, 1], 300_000),
        "bits": lambda: rng.integers(0, 2**64, size=300_000, dtype=np.uint64).view(np.float64),
        "decimals": lambda: np.concatenate([np.round(rng.uniform(-1e4, 1e4, 30_000), k) for k in range(10)]),
    }[source]()
    assert written(values) == expected(values)


def test_ints_pieces_and_what_stands_for_nan():
    ints = np.array([0, -1, 7, -100, 2**63 - 1, -(2**63)], dtype=np.int64)
    floats = np.array([np.nan, np.inf, -np.inf, 1.5, -0.0, 1e300])
    text = writer.rows((ints, floats), ("<", "|", ">\n"), "null")
    assert text.splitlines() == [f"<{i}|{'null' if not math.isfinite(f) else repr(f)}>" for i, f in zip(ints.tolist(), floats.tolist())]
    assert writer.rows((ints[:0],), ("", "\n"), "") == ""
    with pytest.raises(ValueError):
        writer.rows((ints, floats[:2]), ("", ",", "\n"), "")
    with pytest.raises(ValueError):
        writer.rows((floats[3:5].astype(np.float32),), ("", "\n"), "")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "yaml"])
def test_per_row_outputs_are_the_python_writers_byte_for_byte(fmt, dtype, tmp_path, monkeypatch):
    """Extreme and masked logits give p_target from 1 down to 0, NaN log p (ignored rows) and
    losses across the exact range and outside it; more rows than one chunk."""
    rng = np.random.default_rng(3)
    logits = (rng.standard_normal((9000, 5)) * rng.choice([0.01, 1, 30, 300], size=(9000, 1))).astype(dtype)
    logits[::97, 2] = -np.inf
    labels = rng.integers(0, 5, size=9000)
    labels[::13] = -100
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", labels)
    args = ["compute", tmp_path / "x.npy", tmp_path / "y.npy", "--format", fmt, "--per-row", "-q"]
    fast = xent(*args)
    monkeypatch.setattr(compute, "_format", None)
    slow = xent(*args)
    assert fast.exit_code == slow.exit_code == 0, fast.stderr + slow.stderr
    assert fast.stdout == slow.stdout
    if fmt == "json":
        assert len(json.loads(fast.stdout)["per_row"]) == 9000
    elif fmt == "yaml":
        assert len(yaml.safe_load(fast.stdout)["per_row"]) == 9000


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("format", ["csv", "jsonl"])
def test_a_bar_shows_while_per_row_lines_are_written(tmp_path, monkeypatch, format):
    """Writing millions of rows to a file takes seconds: the bar counts the rows written."""
    rng = np.random.default_rng(3)
    rows = 3 * compute.STREAM_ROWS + 5  # four pieces, the last short
    np.save(tmp_path / "x.npy", rng.normal(size=(rows, 4)))
    np.save(tmp_path / "y.npy", rng.integers(0, 4, size=rows))
    terminal = FakeTerminal()
    monkeypatch.setattr(progress, "SHOW_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(Streams, "current", classmethod(lambda cls: Streams(io.StringIO(), terminal)))
    out = tmp_path / f"rows.{format}"
    result = xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "--format", format, "-o", out)
    assert result.exit_code == 0, result.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == rows + (format == "csv")  # the header, then a line a row
    shown = terminal.getvalue()
    assert "writing" in shown and f"{rows}/{rows}" in shown and f"{rows + 1}/" not in shown


def test_by_lines_counts_each_piece_once_it_is_written():
    counted = []
    pieces = progress.by_lines(iter(["a,b\n", "1,2\n3,4\n", "", "5,6\n"]), counted.append, total=3)
    assert next(pieces) == "a,b\n" and counted == []
    assert list(pieces) == ["1,2\n3,4\n", "", "5,6\n"] and counted == [1, 2, 0, 0]  # never past the rows
