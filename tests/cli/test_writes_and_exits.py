"""Outputs written safely, and the exit-code contract in real processes.

Pipes, signals, closed descriptors, devices, file-size limits, modes and
symlinks are about the process, so most of these run `python -m xentcli`
(through bash where the shell sets the scene).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import SAMPLES, SEED_LOGITS, assert_user_error, write_csv, xent

SEED = [str(SAMPLES / "logits.csv"), str(SAMPLES / "labels.csv")]
XENT = f"{shlex.quote(sys.executable)} -m xentcli"
SEED_ARGS = shlex.join(SEED)


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xentcli", *map(str, args)], capture_output=True, text=True, timeout=60, **kwargs
    )


def shell(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def device(path: Path, minor: int) -> Path:
    """A character device like /dev/null (minor 3) or /dev/full (7), made in tmp,
    so that no test ever risks the real ones."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


# Files written safely


def test_a_fifo_output_is_written_in_place(tmp_path):
    fifo = tmp_path / "loss.json"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    process = run("compute", *SEED, "--format", "json", "-o", fifo)
    reader.join(timeout=10)
    assert process.returncode == 0, process.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(received[0])["rows"] == 3


def test_a_device_output_is_written_in_place(tmp_path):
    null = device(tmp_path / "null", 3)
    process = run("compute", *SEED, "--format", "json", "-o", null)
    assert process.returncode == 0, process.stderr
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert os.listdir(tmp_path) == ["null"]


def test_a_full_device_output_is_a_write_error(tmp_path):
    full = device(tmp_path / "full", 7)
    process = run("compute", *SEED, "--format", "json", "-o", full)
    assert (process.returncode, process.stderr) == (2, f"xent: error: {full}: cannot write: No space left on device\n")
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_a_descriptor_output_is_written_to_not_replaced(tmp_path):
    # /dev/fd/1 rather than /dev/stdout: nothing could ever rename over it.
    log = tmp_path / "log.txt"
    log.write_text("previous\n")
    process = shell(f"{XENT} compute {SEED_ARGS} --format value -o /dev/fd/1 >> {shlex.quote(str(log))}")
    assert process.returncode == 0, process.stderr
    first, second = log.read_text().splitlines()
    assert first == "previous" and round(float(second), 4) == 2.0616


@pytest.mark.parametrize("format", ["json", "table", "value"])
def test_a_full_disk_on_stdout_is_a_write_error(format):
    process = shell(f"{XENT} compute {SEED_ARGS} --format {format} > /dev/full")
    assert (process.returncode, process.stderr) == (2, "xent: error: <stdout>: cannot write: No space left on device\n")


def test_a_file_size_limit_on_stdout_is_a_write_error(tmp_path):
    out = tmp_path / "loss.json"
    process = shell(f"ulimit -f 1; {XENT} compute {SEED_ARGS} --format json --per-row > {shlex.quote(str(out))}")
    assert (process.returncode, process.stderr) == (2, "xent: error: <stdout>: cannot write: File too large\n")


def test_stdout_closed_is_a_write_error():
    process = shell(f"{XENT} compute {SEED_ARGS} --format value >&-")
    assert (process.returncode, process.stderr) == (2, "xent: error: <stdout>: cannot write: Bad file descriptor\n")


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664)])
def test_a_new_output_file_gets_the_mode_a_plain_write_gives(tmp_path, umask, mode):
    out = tmp_path / "loss.json"
    process = shell(f"umask {umask:03o}; {XENT} compute {SEED_ARGS} --format json -o {shlex.quote(str(out))}")
    assert process.returncode == 0, process.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == mode


def test_an_existing_output_file_keeps_its_mode(tmp_path):
    out = tmp_path / "loss.json"
    out.write_text("previous")
    out.chmod(0o664)
    process = run("compute", *SEED, "--format", "json", "-o", out)
    assert process.returncode == 0, process.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o664
    assert json.loads(out.read_text())["rows"] == 3


@pytest.mark.parametrize("existing", [True, False])
def test_an_output_symlink_is_written_through_to_its_target(tmp_path, existing):
    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "loss.json"
    if existing:
        target.write_text("previous")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    process = run("compute", *SEED, "--format", "json", "-o", link)
    assert process.returncode == 0, process.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["rows"] == 3
    assert os.listdir(tmp_path / "results") == ["loss.json"]


# Sends the signal from inside the rename, while the temp file exists.
SIGNAL_WHILE_WRITING = """
import os, runpy, signal, sys
rename = os.replace
def replace(*args):
    os.kill(os.getpid(), signal.{name})
    return rename(*args)
os.replace = replace
sys.argv = ["xent", *{args!r}]
runpy.run_module("xentcli", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_signal_while_writing_leaves_the_old_file_and_no_temp_file(tmp_path, name):
    out = tmp_path / "loss.json"
    out.write_text("previous")
    process = python(SIGNAL_WHILE_WRITING.format(name=name, args=["compute", *SEED, "-f", "json", "-o", str(out)]))
    number = getattr(signal, name)
    assert process.returncode == 128 + number, process.stderr
    assert "Traceback" not in process.stderr
    assert out.read_text() == "previous"
    assert os.listdir(tmp_path) == ["loss.json"]


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    "command,output",
    [
        (["compute", "{x}", "{y}", "-o", "{x}"], "{x}"),
        (["compute", "{x}", "{y}", "--save-svg", "{y}"], "{y}"),
        (["compute", "{x}", "{y}", "--save-html", "{link}"], "{link}"),
        (["compute", "{x}", "{y}", "-o", "{hard}"], "{hard}"),
        (["compute", "{dir}/x*.csv", "{y}", "-o", "{x}"], "{x}"),
        (["compute", "{x},{x}", "{y},{y}", "-o", "{y}"], "{y}"),
        (["compute", "{x}", "{y}", "--weight", "{w}", "-o", "{w}"], "{w}"),
        (["explain", "{x}", "{y}", "-o", "{x}"], "{x}"),
        (["compare", "{x}", "{x2}", "{y}", "-o", "{x2}"], "{x2}"),
    ],
)
def test_an_output_that_is_an_input_is_refused_before_anything_is_read(tmp_path, command, output):
    x = write_csv(tmp_path / "x.csv", SEED_LOGITS)
    write_csv(tmp_path / "x2.csv", SEED_LOGITS)
    (tmp_path / "y.csv").write_text("3\n0\n")  # a row short: reading it would fail
    write_csv(tmp_path / "w.csv", [1, 1, 1, 1, 1])
    (tmp_path / "link.csv").symlink_to(x)
    os.link(x, tmp_path / "hard.csv")
    names = {name: tmp_path / f"{name}.csv" for name in ("x", "x2", "y", "w", "link", "hard")}
    before = digests(tmp_path)
    result = xent(*(arg.format(dir=tmp_path, **names) for arg in command))
    assert_user_error(result, output.format(**names), "is one of the inputs")
    assert digests(tmp_path) == before


# The exit-code contract


def closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """xent writing into a pipe whose reader has gone: the write gets EPIPE."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [sys.executable, "-m", "xentcli", *args], stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "args",
    [
        ["compute", *SEED, "--format", "json"],
        ["compute", *SEED],
        ["compute", *SEED, "--format", "csv"],
        ["explain", *SEED, "--row", "1"],
        ["compare", SEED[0], SEED[0], SEED[1]],
        ["--version"],
        ["compute", "--help"],
    ],
)
def test_a_closed_pipe_exits_0_quietly(args):
    process = closed_pipe(*args)
    assert (process.returncode, process.stderr) == (0, "")


def test_stdin_closed_is_a_user_error():
    process = shell(f"{XENT} compute - {shlex.quote(SEED[1])} <&-")
    assert (process.returncode, process.stdout) == (2, "")
    assert process.stderr == "xent: error: <stdin>: standard input is closed\n"


def test_stderr_closed_keeps_the_exit_code_and_stdout_clean(tmp_path):
    error = shell(f"{XENT} compute {shlex.quote(str(tmp_path / 'missing.csv'))} {shlex.quote(SEED[1])} 2>&-")
    assert (error.returncode, error.stdout) == (2, "")
    example = shell(f"{XENT} compute --no-config --format value 2>&-")  # the bundled example's notice
    assert example.returncode == 0 and round(float(example.stdout), 4) == 2.0616
    table = shell(f"{XENT} compute {SEED_ARGS} 2>&-")
    assert table.returncode == 0 and "2.0616" in table.stdout


def test_a_usage_error_is_one_line_with_the_help_hint():
    result = xent("compute", "--zzz")
    assert result.exit_code == 2
    assert result.stderr == "xent: error: No such option: --zzz (see 'xent compute --help')\n"


def test_xent_alone_prints_the_help():
    result = xent()
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith("Usage: xent") and "compute" in result.stdout and "explain" in result.stdout


@pytest.mark.parametrize("files", [SEED, ["L.csv", "Y.csv"], ["-", "y.csv"]])
def test_files_without_a_command_suggest_compute(files):
    result = xent(*files)
    assert result.exit_code == 2
    assert result.stderr == (
        f"xent: error: no command '{files[0]}' (did you mean 'xent compute {files[0]} {files[1]}'?)\n"
    )


def test_a_mistyped_command_is_one_line():
    result = xent("comptue", *SEED)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("xent: error: No such command 'comptue'.")


NASTY = "a\x1b]0;PWNED\x1b\\b\x9b31m\x7f"


def test_control_characters_never_reach_the_terminal_in_errors(tmp_path):
    missing = tmp_path / f"{NASTY}.csv"
    result = xent("compute", missing, SEED[1])
    assert result.exit_code == 2
    assert result.stderr == f"xent: error: {tmp_path}/a\\x1b]0;PWNED\\x1b\\b\\x9b31m\\x7f.csv: no such file\n"
    logits = write_csv(tmp_path / "x.csv", SEED_LOGITS, header=[NASTY, "b", "c", "d", "e"])
    result = xent("compute", logits, "--label-col", "nope")
    assert result.exit_code == 2 and "\\x1b]0;PWNED" in result.stderr
    assert not any(ord(char) < 0x20 and char != "\n" or 0x7F <= ord(char) <= 0x9F for char in result.stderr)


# Sends SIGINT while a module loads during start-up, before any command runs.
INTERRUPT_WHILE_IMPORTING = """
import importlib, os, signal, sys, tomllib
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            os.kill(os.getpid(), signal.SIGINT)
sys.meta_path.insert(0, Interrupt())
sys.argv = ["xent", *{args!r}]
if {script!r}:  # as the installed `xent` script starts it
    with open("pyproject.toml", "rb") as file:
        module, function = tomllib.load(file)["project"]["scripts"]["xent"].split(":")
    getattr(importlib.import_module(module), function)()
else:  # as python -m xentcli does
    import runpy
    runpy.run_module("xentcli", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("script", [True, False])
@pytest.mark.parametrize("module", ["numpy", "typer"])
def test_ctrl_c_during_start_up_is_an_interruption_not_a_traceback(module, script):
    root = Path(__file__).parents[2]
    code = INTERRUPT_WHILE_IMPORTING.format(module=module, script=script, args=["compute", *SEED])
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert (process.returncode, process.stderr) == (130, "xent: interrupted\n")
