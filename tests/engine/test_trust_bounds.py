"""Bounded work on hostile input: memory that does not grow with the file, limits that end in one line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SAMPLES, xent


def peak_anonymous_mb(args: list[str], stdout=subprocess.PIPE) -> tuple[float, subprocess.CompletedProcess]:
    """Run `python -m xentcli ARGS`, sampling its anonymous memory (mapped file pages are not anonymous)."""
    process = subprocess.Popen([sys.executable, "-m", "xentcli", *args], stdout=stdout, stderr=subprocess.PIPE)
    status, peak = Path(f"/proc/{process.pid}/status"), 0
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("RssAnon:"):
                    peak = max(peak, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.002)
    out, err = process.communicate()
    return peak / 1024, subprocess.CompletedProcess(args, process.returncode, out, err)


def test_class_axis_zero_reads_blocks_not_a_copy(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 2_000_000)).astype(np.float32)  # 64 MB, classes first
    target = rng.integers(0, 8, size=2_000_000)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", target)
    peak, run = peak_anonymous_mb(["compute", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--class-axis", "0", "--format", "value"])
    assert run.returncode == 0, run.stderr
    expected = float(F.cross_entropy(torch.from_numpy(logits.T.astype(np.float64)), torch.from_numpy(target)))
    assert float(run.stdout) == pytest.approx(expected, rel=1e-5)
    assert peak < 64 + 30, f"{peak:.0f} MB anonymous: the array was copied whole"


def test_an_endless_stream_stops_at_the_limit():
    result = xent("compute", "/dev/zero", SAMPLES / "labels.csv", "--max-bytes", "1000000")
    assert result.exit_code == 2
    assert result.stderr.strip() == "xent: error: /dev/zero: more than 1000000 bytes: past the --max-bytes limit"


def test_a_file_of_blank_lines_is_found_empty_without_a_pass_per_line(tmp_path, monkeypatch):
    from xentcli.readers import text

    decoded = []
    original = text.decode
    monkeypatch.setattr(text, "decode", lambda *args: decoded.append(1) or original(*args))
    (tmp_path / "blank.csv").write_bytes(b"\n" * 5_000_000 + b"   \r\n" * 1000 + b"# a comment\n")
    result = xent("compute", tmp_path / "blank.csv", SAMPLES / "labels.csv")
    assert result.exit_code == 2 and "the file is empty" in result.stderr
    assert len(decoded) < 10  # the blank lines were skipped in bulk, not decoded one by one


def test_streamed_text_gives_the_same_numbers(tmp_path, streamed):
    rng = np.random.default_rng(5)
    logits, target = rng.normal(size=(400, 4)), rng.integers(0, 4, size=400)
    lines = ["a,b,c,d,label"] + [",".join(f"{v:.17g}" for v in row) + f",{t}" for row, t in zip(logits, target)]
    lines.insert(50, "# a comment")
    lines.insert(90, "")
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), reduction="none").numpy()
    result = xent("compute", tmp_path / "x.csv", "--label-col", "label", "--format", "json", "--per-row")
    assert result.exit_code == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    assert data["loss"] == pytest.approx(float(expected.mean()), rel=1e-12)
    assert [r["loss"] for r in data["per_row"]] == pytest.approx(expected.tolist(), rel=1e-12)
    explained = xent("explain", tmp_path / "x.csv", "--label-col", "label", "--row", "-1", "--format", "json")
    assert json.loads(explained.stdout)["loss"] == pytest.approx(float(expected[-1]), rel=1e-12)
    table = xent("compute", tmp_path / "x.csv", "--label-col", "label")
    assert table.exit_code == 0 and "399" in table.stdout


def test_streamed_text_names_the_bad_line(tmp_path, streamed):
    rows = [f"{k}.5,1,2" for k in range(300)]
    rows[217] = "1,x,2"
    (tmp_path / "x.csv").write_text("\n".join(rows) + "\n")
    np.savetxt(tmp_path / "y.csv", np.zeros(300), fmt="%d")
    result = xent("compute", tmp_path / "x.csv", tmp_path / "y.csv")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"xent: error: {tmp_path / 'x.csv'}:218:2: 'x' is not a number (a column of labels or ids? name it with --label-col or --id-col)"


def test_a_large_text_file_streams_in_bounded_memory(tmp_path):
    rng = np.random.default_rng(1)
    block = "\n".join(",".join(f"{v:.6f}" for v in row) for row in rng.normal(size=(20_000, 10))) + "\n"
    with open(tmp_path / "x.csv", "w") as file:
        for _ in range(100):  # about 180 MB of text, 2M rows
            file.write(block)
    np.save(tmp_path / "y.npy", np.tile(rng.integers(0, 10, size=20_000), 100))
    peak, run = peak_anonymous_mb(["compute", str(tmp_path / "x.csv"), str(tmp_path / "y.npy"), "--format", "value"])
    assert run.returncode == 0, run.stderr
    assert peak < 120, f"{peak:.0f} MB anonymous for 2M rows: parsed whole, not in chunks"


@pytest.mark.parametrize("output", ["json", "csv", "yaml"])
def test_per_row_outputs_stream(tmp_path, output):
    rng = np.random.default_rng(4)
    rows = 400_000
    np.save(tmp_path / "x.npy", rng.normal(size=(rows, 4)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 4, size=rows))
    with open(tmp_path / "out", "w") as sink:
        peak, run = peak_anonymous_mb(
            ["compute", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--format", output, "--per-row"], stdout=sink
        )
    assert run.returncode == 0, run.stderr
    assert peak < 150, f"{peak:.0f} MB anonymous: the per-row output was built whole"
    text = (tmp_path / "out").read_text()
    if output == "json":
        import json

        data = json.loads(text)
        assert len(data["per_row"]) == rows and data["per_row"][-1]["row"] == rows - 1
    elif output == "csv":
        assert text.count("\n") == rows + 1
    else:
        import json

        rows_text = text[text.index("per_row:\n") + len("per_row:\n") :].splitlines()
        assert len(rows_text) == rows and json.loads(rows_text[-1][2:])["row"] == rows - 1


def test_compare_refuses_an_unbounded_bootstrap(tmp_path):
    np.save(tmp_path / "a.npy", np.array([[1.0, 2.0], [0.5, 0.1]]))
    np.save(tmp_path / "b.npy", np.array([[2.0, 1.0], [0.1, 0.5]]))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    result = xent("compare", tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "y.npy", "--resamples", "1000000000")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and "1000000" in result.stderr
    from xentcli.engine.compare import compare
    from xentcli.errors import XentError
    from xentcli.engine import cross_entropy

    base = cross_entropy(np.load(tmp_path / "a.npy"), np.load(tmp_path / "y.npy"))
    with pytest.raises(XentError, match="resamples"):
        compare(base, base, resamples=10**9)


def test_a_long_table_is_drawn_in_chunks_that_line_up(tmp_path, monkeypatch):
    from xentcli import cli

    monkeypatch.setattr(cli, "TABLE_CHUNK", 50)
    written = []
    original = cli.write_output
    monkeypatch.setattr(cli, "write_output", lambda text, path: original(
        text if isinstance(text, str) else (written.append(p) or p for p in text), path))
    rng = np.random.default_rng(9)
    logits, target = rng.normal(size=(180, 3)) * 3, rng.integers(0, 3, size=180)
    logits[120, 1] = 900.0  # a loss of about 900: wider than the others
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", target)
    result = xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "--rows", "0")
    assert result.exit_code == 0, result.stderr
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    rows = [line for line in lines if len(line.split()) >= 7 and line.split()[0].isdigit()]
    assert [int(line.split()[0]) for line in rows] == list(range(180))
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), reduction="none").numpy()
    shown = [float(line.split()[-3]) for line in rows]
    assert shown == pytest.approx(expected.tolist(), abs=5e-5)
    import re

    ends = {[m.end() for m in re.finditer(r"\S+", line)][-3] for line in rows}
    assert len(ends) == 1, "the loss column moved between chunks"
    assert len(written) >= 4, "the table was drawn whole, not a chunk at a time"
