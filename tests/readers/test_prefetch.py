"""The rows of large CSVs counted while xent starts up (xentcli/prefetch.py):
the same numbers and the same errors as the reader's own count, whatever
the file holds above and between its rows."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_user_error, xent
from xentcli import prefetch
from xentcli.readers import text


@pytest.fixture
def small_streams(monkeypatch):
    """Small files take both the large-file path and the start-up count, in many chunks."""
    monkeypatch.setattr(prefetch, "_counted", [])
    monkeypatch.setattr(prefetch, "MOST_BYTES", 1 << 30)  # 0 on a 1-core machine, where nothing is counted early
    monkeypatch.setattr(prefetch, "STREAM_BYTES", 100)
    monkeypatch.setattr(prefetch, "CHUNK_BYTES", 97)
    monkeypatch.setattr(text, "STREAM_BYTES", 100)
    monkeypatch.setattr(text, "STREAM_CHUNK_BYTES", 97)  # as they are: the same cuts, the same blocks


def no_own_count(monkeypatch):
    """The stream must take the start-up count (counting again would hide a wrong
    one): it counts only its first chunk again, the one cut at the header."""
    count = text.TextStream._count

    def first_chunk_only(data, bounds):
        assert len(bounds) <= 2, "the stream counted rows the start-up count had counted"
        return count(data, bounds)

    monkeypatch.setattr(text.TextStream, "_count", staticmethod(first_chunk_only))


def loss_json(*args) -> dict:
    result = xent("compute", *args, "--format", "json", "--per-row")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


LAYOUTS = {
    "plain": lambda lines: "\n".join(lines) + "\n",
    "header, CRLF, no last newline": lambda lines: "a,b,c\r\n" + "\r\n".join(lines),
    "comments and blank lines": lambda lines: "# made by a test\n\na,b,c\n"
    + "".join(line + ("\n\n# between\n   \n" if k % 7 == 3 else "\n") for k, line in enumerate(lines)),
    "pandas' index": lambda lines: ",0,1,2\n" + "".join(f"{k},{line}\n" for k, line in enumerate(lines)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_counted_at_start_up_gives_what_the_reader_counts(tmp_path, monkeypatch, small_streams, layout):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 3))
    y = rng.integers(0, 3, size=300)
    logits = tmp_path / "x.csv"
    logits.write_text(LAYOUTS[layout]([",".join(f"{v:.6f}" for v in row) for row in x]))
    labels = tmp_path / "y.csv"
    labels.write_text("\n".join(map(str, y)) + "\n")
    own = loss_json(logits, labels)
    prefetch.start(["compute", str(logits), str(labels), "--format", "json"])
    assert len(prefetch._counted) == 2
    no_own_count(monkeypatch)
    early = loss_json(logits, labels)
    assert early == own
    expected = F.cross_entropy(torch.tensor(np.round(x, 6)), torch.from_numpy(y))
    assert early["loss"] == pytest.approx(float(expected), rel=1e-12)


def test_a_nul_byte_is_named_as_the_reader_names_it(tmp_path, monkeypatch, small_streams):
    lines = [f"{k}.5,{k}.25" for k in range(10_000)]  # past the 64 KiB that parse_text looks at itself
    lines[9000] = "9000.5,90\x0000.25"
    logits = tmp_path / "x.csv"
    logits.write_text("\n".join(lines) + "\n")
    labels = tmp_path / "y.csv"
    labels.write_text("0\n1\n" * 4999)  # two rows short: the NUL byte, found by the count, is named first
    assert_user_error(xent("compute", logits, labels), f"{logits}:9001", "NUL")
    prefetch.start([str(logits)])
    no_own_count(monkeypatch)
    assert_user_error(xent("compute", logits, labels), f"{logits}:9001", "NUL")


def test_a_file_changed_after_start_up_is_read_again(tmp_path, small_streams):
    logits = tmp_path / "x.csv"
    logits.write_text("1.5,0.5\n" * 100)
    labels = tmp_path / "y.csv"
    labels.write_text("0\n" * 150)
    prefetch.start([str(logits)])
    logits.write_text("1.5,0.5\n" * 150)  # another size: not the file counted
    result = xent("compute", logits, labels, "--format", "value")
    assert result.exit_code == 0, result.stderr
    assert float(result.stdout) == pytest.approx(float(F.cross_entropy(torch.tensor([[1.5, 0.5]]), torch.tensor([0]))))


def test_only_large_text_files_are_counted_each_once(tmp_path, monkeypatch, small_streams):
    big = tmp_path / "big.csv"
    big.write_text("1,2\n" * 100)
    (tmp_path / "small.csv").write_text("1,2\n")
    np.save(tmp_path / "big.npy", np.zeros((100, 3)))
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "huge.csv").write_text("1,2\n" * 1000)  # past MOST_BYTES: the reader's own threads count it sooner
    monkeypatch.setattr(prefetch, "MOST_BYTES", 2000)
    prefetch.start(["compute", str(tmp_path / "huge.csv"), str(tmp_path / "small.csv"), str(tmp_path / "big.npy"),
                    str(tmp_path / "dir.csv"), str(tmp_path / "missing.csv"), "-", str(big), "--output", str(big)])
    assert [entry.data.size() for entry in prefetch._counted] == [big.stat().st_size]


def test_a_named_pipe_is_left_to_the_reader(tmp_path, small_streams):
    """Opening a FIFO waits for its writer and would take its data from the reader."""
    import os
    import threading

    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    starting = threading.Thread(target=prefetch.start, args=([str(fifo)],), daemon=True)
    starting.start()
    starting.join(timeout=5)
    assert not starting.is_alive(), "prefetch opened the pipe and waits for a writer"
    assert prefetch._counted == []


def test_the_command_counts_a_large_csv_while_it_starts(tmp_path):
    """The installed command, on a file past the real threshold (17 MB)."""
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(240_000, 8)), 6)
    y = rng.integers(0, 8, size=len(x))
    logits = tmp_path / "x.csv"
    np.savetxt(logits, x, fmt="%.6f", delimiter=",")
    assert logits.stat().st_size > prefetch.STREAM_BYTES
    labels = tmp_path / "y.csv"
    np.savetxt(labels, y, fmt="%d")
    # In-process: no start-up count.
    inside = xent("compute", logits, labels, "--format", "value")
    assert inside.exit_code == 0, inside.stderr
    # The command's own start (xentcli.__main__.main), with the stream's own count refused.
    script = (
        "import sys; from xentcli import prefetch; prefetch.MOST_BYTES = 1 << 30\n"
        "from xentcli.readers import text\n"
        "count = text.TextStream._count\n"
        "def first_chunk_only(data, bounds): assert len(bounds) <= 2, 'counted again'; return count(data, bounds)\n"
        "text.TextStream._count = staticmethod(first_chunk_only)\n"
        "from xentcli.__main__ import main; main()"
    )
    command = [sys.executable, "-c", script, "compute", str(logits), str(labels), "--format", "value"]
    started = subprocess.run(command, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    assert started.stdout == inside.stdout
    expected = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(y))
    assert float(started.stdout) == pytest.approx(float(expected), rel=1e-12)
