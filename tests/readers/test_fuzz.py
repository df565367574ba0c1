"""Fuzzing the readers and the config loader: whatever the bytes, exit 0 or 2, one clean line.

Each target counts its cases; the totals are printed at the end of the test
run (conftest.pytest_terminal_summary).
"""

from __future__ import annotations

import bz2
import gzip
import io
import re
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FUZZ_CASES, SAMPLES, xent

CASES = 150
FUZZ = settings(
    max_examples=CASES,
    deadline=2000,  # a hang fails the case
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
SEED_CSV = (SAMPLES / "logits.csv").read_bytes()
LABELS = str(SAMPLES / "labels.csv")


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


VALID = {
    "csv": SEED_CSV,
    "npy": npy_bytes(np.loadtxt(SAMPLES / "logits.csv", delimiter=",")),
    "npz": npz_bytes(logits=np.loadtxt(SAMPLES / "logits.csv", delimiter=","), labels=np.array([3, 0, 2])),
    "csv.gz": gzip.compress(SEED_CSV),
    "csv.bz2": bz2.compress(SEED_CSV),
    "yaml": b"logits: logits.csv\nlabels: labels.csv\nreduction: sum\nweight: [1, 2, 1, 1, 1]\nlabel_smoothing: 0.1\n",
}


@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """A valid file, truncated, with bytes flipped, inserted or deleted."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


def check(result, target: str) -> None:
    FUZZ_CASES[target] = FUZZ_CASES.get(target, 0) + 1
    assert result.exit_code in (0, 2), (result.exit_code, result.stdout[-500:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("xent: error:")]
    assert len(errors) == (1 if result.exit_code == 2 else 0), result.stderr


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_as_csv(tmp_path, data):
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    check(xent("compute", path, LABELS, "--format", "value"), "random bytes as csv")


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_as_labels(tmp_path, data):
    path = tmp_path / "y.csv"
    path.write_bytes(data)
    check(xent("compute", SAMPLES / "logits.csv", path, "--format", "value"), "random bytes as labels")


@FUZZ
@given(data=st.text(alphabet=st.sampled_from("0123456789.,;-+eE \t\n\r#\"nainf"), max_size=200))
def test_number_like_text(tmp_path, data):
    path = tmp_path / "x.txt"
    path.write_text(data)
    check(xent("compute", path, LABELS, "--format", "value"), "number-like text")


def fuzz_file(suffix: str):
    @FUZZ
    @given(data=mutated(VALID[suffix]))
    def test(tmp_path, data):
        path = tmp_path / f"x.{suffix}"
        path.write_bytes(data)
        labels = [] if suffix == "npz" else [LABELS]
        check(xent("compute", path, *labels, "--format", "value"), f"mutated {suffix}")

    return test


test_mutated_csv = fuzz_file("csv")
test_mutated_npy = fuzz_file("npy")
test_mutated_npz = fuzz_file("npz")
test_mutated_gzip = fuzz_file("csv.gz")
test_mutated_bz2 = fuzz_file("csv.bz2")


@FUZZ
@given(data=mutated(VALID["npy"]))
def test_mutated_npy_on_stdin(data):
    check(xent("compute", "-", LABELS, "--format", "value", input=data), "mutated npy on stdin")


@FUZZ
@given(data=st.one_of(mutated(VALID["yaml"]), st.binary(max_size=200)))
def test_mutated_config(tmp_path, data):
    (tmp_path / "logits.csv").write_bytes(SEED_CSV)
    (tmp_path / "labels.csv").write_bytes(b"3\n0\n2\n")
    path = tmp_path / "xent.yaml"
    path.write_bytes(data)
    check(xent("compute", "--config", path, "--format", "value"), "mutated config")


@FUZZ
@given(names=st.lists(st.text(st.characters(exclude_characters="\x00/\\", exclude_categories=("Cs",)), max_size=12), min_size=1, max_size=4, unique=True))
def test_npz_with_odd_member_names(tmp_path, names):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name + ".npy", npy_bytes(np.zeros((3, 5))))
    path = tmp_path / "x.npz"
    path.write_bytes(buffer.getvalue())
    check(xent("compute", path, LABELS, "--format", "value"), "npz member names")


ROWS_CSV = "".join(
    ",".join(f"{v:.{k % 7}f}" for v in row) + "\n"
    for k, row in enumerate(np.random.default_rng(7).normal(size=(40, 5)) * 3)
).encode()
ROWS_LABELS = "".join(f"{k}\n" for k in np.random.default_rng(8).integers(0, 5, size=40)).encode()


@FUZZ
@given(logits=mutated(ROWS_CSV), labels=mutated(ROWS_LABELS))
def test_streamed_text_reads_as_whole_text_does(tmp_path, monkeypatch, logits, labels):
    """A mutated 40-row CSV and its labels, read as a large file is (rows counted
    a chunk at a time, 16 bytes a step, then parsed chunk by chunk, the labels
    read on a helper thread), must give what the whole-file reader gives: the
    same value or an error: mostly the same one; with several bad lines, the
    first named may differ (see below)."""
    from xentcli.readers import text

    (tmp_path / "x.csv").write_bytes(logits)
    (tmp_path / "y.csv").write_bytes(labels)
    args = ("compute", tmp_path / "x.csv", tmp_path / "y.csv", "--format", "value")
    whole = xent(*args)
    monkeypatch.setattr(text, "STREAM_BYTES", 64)
    monkeypatch.setattr(text, "STREAM_CHUNK_BYTES", 50)
    streamed = xent(*args)
    monkeypatch.undo()
    check(streamed, "mutated csv, streamed")
    assert (streamed.exit_code, streamed.stdout) == (whole.exit_code, whole.stdout)
    if streamed.stderr != whole.stderr:
        # With several bad lines, the whole reader decodes every line before it
        # parses one, the stream a chunk at a time: each may name another line
        # of the same file first, or, as above, the labels before the logits.
        file = re.compile(r"xent: error: (\S+?\.csv)\b")
        same_file = file.search(streamed.stderr)[1] == file.search(whole.stderr)[1]
        found_later = f"error: {tmp_path / 'x.csv'}:" in whole.stderr
        named_first = f"error: {tmp_path / 'y.csv'}" in streamed.stderr
        assert same_file or (found_later and named_first), (whole.stderr, streamed.stderr)
