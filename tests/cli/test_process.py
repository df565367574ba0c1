"""The installed command as a real process, and what it imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import SAMPLES

SEED = [str(SAMPLES / "logits.csv"), str(SAMPLES / "labels.csv")]


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xentcli", *args], capture_output=True, text=True, timeout=60, **kwargs
    )


def test_python_dash_m_computes_the_seed_loss():
    process = run("compute", *SEED, "--format", "value")
    assert process.returncode == 0, process.stderr
    assert round(float(process.stdout), 4) == 2.0616


def test_error_exit_code_and_single_line_in_a_real_process(tmp_path):
    process = run("compute", str(tmp_path / "missing.csv"), SEED[1])
    assert process.returncode == 2
    assert process.stderr == f"xent: error: {tmp_path / 'missing.csv'}: no such file\n"


def test_table_in_a_pipe_has_no_colour_codes():
    process = run("compute", *SEED)
    assert process.returncode == 0 and "\x1b[" not in process.stdout


def test_closed_pipe_ends_quietly(tmp_path):
    rows = "\n".join("0.1,0.2,0.3" for _ in range(20000)) + "\n"
    (tmp_path / "x.csv").write_text(rows)
    (tmp_path / "y.csv").write_text("1\n" * 20000)
    command = (
        f"{sys.executable} -m xentcli compute {tmp_path / 'x.csv'} {tmp_path / 'y.csv'} "
        "--format csv -q | head -1"
    )
    process = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=60)
    assert process.stdout == "row,target,p_target,log_p_target,loss,pred\n"
    assert "Traceback" not in process.stderr and "Error" not in process.stderr


@pytest.mark.parametrize(
    "code",
    [
        # The numpy path of the CLI never imports torch.
        "from xentcli.cli import app; import sys\n"
        "try:\n    app(['compute', *ARGS, '--format', 'value'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "assert 'torch' not in sys.modules",
        # The core imports neither typer nor rich.
        "import xentcli, sys\nb = xentcli.load_batch(*ARGS)\nxentcli.cross_entropy(b.logits, b.target)\n"
        "assert not {'typer', 'rich', 'torch'} & set(sys.modules), sorted(sys.modules)",
    ],
)
def test_imports_stay_lean(code):
    process = subprocess.run(
        [sys.executable, "-c", f"ARGS = {SEED!r}\n{code}"], capture_output=True, text=True, timeout=60
    )
    assert process.returncode == 0, process.stderr


def test_the_command_keeps_openblas_to_one_thread_unless_told(monkeypatch):
    """numpy's OpenBLAS threads spin at start (12% of a 2-core machine's CPU
    while xent parsed); xent makes no BLAS call. A user's own setting wins."""
    import os

    import xentcli.__main__ as entry
    import xentcli.cli

    seen = []
    monkeypatch.setattr(xentcli.cli, "app", lambda **kwargs: seen.append(os.environ.get("OPENBLAS_NUM_THREADS")))
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    entry.main()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    entry.main()
    assert seen == ["1", "4"]


def test_the_collector_runs_again_after_the_imports(monkeypatch):
    """The imports run with the cycle collector off and their objects frozen
    (start-up 175 -> 140 ms); the command itself must run with it on."""
    import gc

    import xentcli.__main__ as entry
    import xentcli.cli

    seen = []
    monkeypatch.setattr(xentcli.cli, "app", lambda **kwargs: seen.append(gc.isenabled()))
    try:
        entry.main()
    finally:
        gc.unfreeze()
        gc.enable()
    assert seen == [True]


REUSE = """
import resource, sys, numpy as np
import xentcli.__main__ as entry
if sys.argv[1] == "kept":
    entry._keep_freed_memory()
np.ones(1 << 20)  # 8 MB (the labels, say), freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(1 << 20)  # 8 MB again
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_command_reuses_the_memory_it_frees():
    """glibc gave freed blocks' pages back and faulted fresh ones in for the
    next blocks (3.7K of the 95 MB CSV's 13.5K page faults were a chunk's
    numbers, 0.8 MB, again and again); the command keeps them."""
    faults = {
        mode: int(subprocess.run([sys.executable, "-c", REUSE, mode], capture_output=True, text=True, check=True).stdout)
        for mode in ("plain", "kept")
    }
    assert faults["kept"] < 20 < 200 < faults["plain"], faults  # 2048 pages of 4 KiB
