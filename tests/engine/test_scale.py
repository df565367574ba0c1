"""Scale: many files as one, blocks and threads, the fast text reader, the progress bar."""

from __future__ import annotations

import io
import json
import math
import random
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli
from conftest import assert_user_error, xent, xent_json
from xentcli.engine import backends
from xentcli.render import progress
from xentcli.render.output import Streams
from xentcli.readers import text as inputs


@pytest.fixture
def shards(tmp_path):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1000, 7)).astype(np.float32)
    target = rng.integers(0, 7, size=1000)
    target[::13] = -100
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for k, (a, b) in enumerate([(0, 300), (300, 650), (650, 1000)]):
        np.save(tmp_path / "x" / f"part{k}.npy", logits[a:b])
        np.save(tmp_path / "y" / f"part{k}.npy", target[a:b])
    expected = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target)))
    return tmp_path, expected


def test_globbed_files_give_the_result_of_one_file(shards):
    folder, expected = shards
    data = xent_json(str(folder / "x" / "*.npy"), str(folder / "y" / "*.npy"))
    assert data["loss"] == pytest.approx(expected, rel=1e-6)
    assert data["rows"] == 1000 and data["ignored"] == len(range(0, 1000, 13))
    assert [f["rows"] for f in data["files"]] == [300, 350, 350]
    assert sum(f["ignored"] for f in data["files"]) == data["ignored"]
    assert data["inputs"]["logits"] == [str(folder / "x" / f"part{k}.npy") for k in range(3)]
    whole = xentcli.cross_entropy(
        np.concatenate([np.load(folder / "x" / f"part{k}.npy") for k in range(3)]),
        np.concatenate([np.load(folder / "y" / f"part{k}.npy") for k in range(3)]),
    )
    assert data["loss"] == pytest.approx(whole.loss, rel=1e-14)
    assert data["accuracy"] == pytest.approx(whole.accuracy, rel=1e-15)


def test_comma_separated_files_and_per_row_output(shards):
    folder, expected = shards
    logits = ",".join(str(folder / "x" / f"part{k}.npy") for k in range(3))
    labels = ",".join(str(folder / "y" / f"part{k}.npy") for k in range(3))
    result = xent("compute", logits, labels, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1001 and lines[-1].startswith("999,")
    table = xent("compute", logits, labels, env={"COLUMNS": "200"})
    assert "part1.npy" in table.stdout and "350" in table.stdout


def test_file_count_mismatch_and_no_match(shards):
    folder, _ = shards
    assert_user_error(
        xent("compute", str(folder / "x" / "*.npy"), str(folder / "y" / "part0.npy")),
        contains="3 logits files but 1 labels files",
    )
    assert_user_error(xent("compute", str(folder / "x" / "*.csv"), "y.csv"), contains="no file matches")
    assert_user_error(
        xent("explain", str(folder / "x" / "*.npy"), str(folder / "y" / "*.npy")), contains="one LOGITS file"
    )


def test_totals_without_per_row_arrays_match():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5000, 12))
    target = rng.integers(0, 12, size=5000)
    kept = xentcli.cross_entropy(logits, target, label_smoothing=0.1)
    lean = xentcli.cross_entropy(logits, target, label_smoothing=0.1, keep_rows=False)
    assert lean.losses is None and lean.pred is None
    assert (lean.sum, lean.mean, lean.correct, lean.ignored) == (kept.sum, kept.mean, kept.correct, kept.ignored)
    assert kept.correct == int((kept.pred == target).sum())


@pytest.mark.parametrize("classes", [3, 32, 33, 500])
def test_blocks_and_threads_do_not_change_the_numbers(monkeypatch, classes):
    rng = np.random.default_rng(classes)
    logits = rng.normal(size=(3001, classes)).astype(np.float32)
    target = rng.integers(0, classes, size=3001)
    reference = xentcli.cross_entropy(logits, target)
    monkeypatch.setattr(backends, "NUMPY_BLOCK_BYTES", 4096)
    monkeypatch.setattr(backends.NumpyOps, "threads", 1)
    one_thread = xentcli.cross_entropy(logits, target)
    monkeypatch.setattr(backends.NumpyOps, "threads", 4)
    four_threads = xentcli.cross_entropy(logits, target)
    assert one_thread.sum == four_threads.sum  # block sums are added in block order
    np.testing.assert_array_equal(one_thread.losses, four_threads.losses)
    np.testing.assert_array_equal(one_thread.losses, reference.losses)
    assert one_thread.loss == pytest.approx(reference.loss, rel=1e-12)


@pytest.mark.parametrize("classes", [5, 40])
def test_prediction_is_the_first_maximum_as_in_torch(classes):
    rng = np.random.default_rng(2)
    logits = rng.integers(0, 3, size=(400, classes)).astype(np.float64)  # many ties
    result = xentcli.cross_entropy(logits, np.zeros(400, dtype=int))
    np.testing.assert_array_equal(result.pred, np.argmax(logits, axis=1))
    np.testing.assert_array_equal(result.pred, torch.from_numpy(logits).argmax(1).numpy())


def test_npy_is_memory_mapped_not_loaded(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 3), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.zeros(10, dtype=np.int64))
    batch = xentcli.load_batch(str(tmp_path / "x.npy"), str(tmp_path / "y.npy"))
    assert isinstance(batch.logits, np.memmap)


def random_numbers(rng: random.Random, count: int) -> list[str]:
    makers = [
        lambda: repr(rng.uniform(-1e3, 1e3)),
        lambda: f"{rng.gauss(0, 1):.6f}",
        lambda: f"{rng.random():.17e}",
        lambda: f"{rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300):.12g}",
        lambda: str(rng.randint(-10**6, 10**6)),
        lambda: rng.choice("+-") + f"{abs(rng.gauss(0, 1)):.6f}",  # the sign written both ways
        # every count of digits on each side of the point (the reader takes them two at a time)
        lambda: "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 21))) + "."
        + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 21))),
        lambda: rng.choice(["0", "-0", "0.1", "1e-320", "4.9e-324", "1.7976931348623157e308", "9007199254740993",
                            "123456789012345678901234567890", "0.00000000000000000000000001234", "1e23", ".5", "5.",
                            "+0", "-0.0", "+.5", "-.5", "+5.", "-1e-5", "+1E+3", "-4.9e-324"]),
    ]
    return [rng.choice(makers)() for _ in range(count)]


def test_the_c_reader_is_built():
    """setup.py builds it wherever a C compiler exists (CI has one); without it
    xent still works, through numpy's loadtxt, at a fifth of the speed."""
    assert inputs._fastcsv is not None, "xentcli/_fastcsv.c was not compiled: is gcc installed?"


@pytest.mark.parametrize("delimiter", [",", "\t", ";", " "])
def test_fast_reader_gives_exactly_pythons_floats(delimiter):
    rng = random.Random(3)
    cells = random_numbers(rng, 3 * 4000)
    rows = [cells[i : i + 3] for i in range(0, len(cells), 3)]
    text = "\n".join(delimiter.join(row) for row in rows) + "\n"
    table = inputs.parse_text("t.txt", text.encode(), delimiter=None if delimiter == " " else delimiter)
    assert table._fast_numbers is not None
    expected = np.array([[float(c) for c in row] for row in rows])
    np.testing.assert_array_equal(table.numbers(range(3)), expected)
    assert np.signbit(table.numbers(range(3))).tolist() == np.signbit(expected).tolist()


def long_numbers(rng: random.Random, count: int) -> list[str]:
    """Numbers of up to 19 digits that Clinger's exact path cannot take (more
    than 2^53, or 10^q past 10^22): the reader's Eisel-Lemire path. Random
    doubles as repr writes them (pandas' 17 digits), random digits with any
    exponent, exact ties between two doubles (to even) and their neighbours,
    subnormals and the ends of the range."""
    from decimal import Decimal

    def double() -> float:
        while True:
            value = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            if math.isfinite(value):
                return value

    def tie() -> str:
        e = rng.randint(49, 63)  # doubles in [2^e, 2^(e+1)) lie 2^(e-52) apart
        middle = Decimal(2 * rng.randint(2**52, 2**53 - 1) + 1) * Decimal(2) ** (e - 53)
        text = format(middle, "f")
        return rng.choice([text, text + "1", text[:-1] + str(int(text[-1]) - 1) if text[-1] != "0" else text])

    makers = [
        lambda: repr(double()),
        lambda: repr(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(52)))[0]),  # subnormal
        lambda: "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 19))) + f"e{rng.randint(-360, 330)}",
        lambda: f"{rng.randint(1, 9)}.{rng.getrandbits(60) % 10**18:018d}e{rng.randint(-330, 310)}",
        tie,
        lambda: rng.choice(["2.2250738585072011e-308", "2.2250738585072012e-308", "2.2250738585072014e-308",
                            "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
                            "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
                            "1e-342", "1e-343", "9999999999999999999e-343", "1e308", "1e309", "0e-400", "0e400",
                            "-0e-5", "9007199254740993", "9007199254740995", "18446744073709551615",
                            "9999999999999999999", "10000000000000000000", "4503599627370496.5", "-1e23", "8.5e-5"]),
    ]
    signed = [rng.choice(makers)() for _ in range(count)]
    return [text if text.startswith("-") else rng.choice(["", "", "-", "+"]) + text for text in signed]


def test_the_table_of_powers_of_five_is_the_generators():
    """xentcli/_pow5.h is generated (tools/pow5_table.py); the reading tests above check its numbers."""
    from pathlib import Path

    from tools.pow5_table import header

    assert (Path(xentcli.__file__).parent / "_pow5.h").read_text() == header()


@pytest.mark.parametrize("seed", range(4))
def test_fast_reader_reads_long_numbers_exactly(seed):
    rng = random.Random(seed)
    cells = long_numbers(rng, 3 * 20000)
    rows = [cells[i : i + 3] for i in range(0, len(cells), 3)]
    table = inputs.parse_text("t.csv", ("\n".join(",".join(row) for row in rows) + "\n").encode(), delimiter=",")
    assert table._fast_numbers is not None
    expected = np.array([[float(c) for c in row] for row in rows])
    np.testing.assert_array_equal(table.numbers(range(3)).view(np.uint64), expected.view(np.uint64))


def shaped_numbers(rng: random.Random, count: int) -> list[str]:
    """Runs of numbers of one shape (integer digits, point, fraction digits, as
    a fixed format writes them; no point where there are no fraction digits),
    broken by numbers that share their first bytes but not their end: the
    reader's prediction of the next number's shape, right and wrong."""
    shapes = [(1, 6), (2, 3), (3, 4), (1, 1), (6, 1), (2, 5), (1, 5), (4, 2), (1, 0), (3, 0), (8, 0)]
    odd = [
        lambda k, f: "7" * k + "." + "3" * (f + 1),  # one more digit than the shape
        lambda k, f: "7" * k + "." + "3" * f + "e5",  # an exponent after it
        lambda k, f: "7" * k + "." + "3" * f + "E-3",
        lambda k, f: "+" + "2" * k + "." + "5" * f,
        lambda k, f: "7" * (k + 1) + "." + "3" * max(f - 1, 1),  # the point one byte later
        lambda k, f: "-" + "0" * k + "." + "0" * f,  # -0
        lambda k, f: "9" * k + "." + "9" * f + "9" * 12,  # past 8 bytes
        lambda k, f: "1" + "0" * (k + f),  # no point
        lambda k, f: "3" * k,  # the shape's integer digits, then the delimiter where its point would be:
        lambda k, f: "-" + "3" * k,  # ',' ^ '.' ^ '0' is '2', a digit to a test that reads the point as '0'
        lambda k, f: "." + "4" * max(f, 1),
        lambda k, f: "nan",
    ]
    cells, shape = [], rng.choice(shapes)
    while len(cells) < count:
        if rng.random() < 0.01:
            shape = rng.choice(shapes)
        k, f = shape
        if rng.random() < 0.12:
            cells.append(rng.choice(odd)(k, f))
        else:
            digits = "".join(rng.choice("0123456789") for _ in range(k + f))
            cells.append(rng.choice(["", "-"]) + digits[:k] + ("." if f else "") + digits[k:])
    return cells


@pytest.mark.parametrize("delimiter,newline", [(",", "\n"), ("\t", "\r\n"), (";", "\n"), (" ", "\n")])
def test_fast_reader_reads_numbers_of_a_predicted_shape_exactly(delimiter, newline):
    rng = random.Random(11)
    for columns in (1, 3, 10):
        cells = shaped_numbers(rng, columns * 3000)
        rows = [cells[i : i + columns] for i in range(0, len(cells), columns)]
        text = newline.join(delimiter.join(row) for row in rows) + rng.choice(["", newline])
        table = inputs.parse_text("t.txt", text.encode(), delimiter=None if delimiter == " " else delimiter, header=False)
        assert table._fast_numbers is not None
        numbers = table.numbers(range(columns))
        expected = np.array([[float(c) for c in row] for row in rows])
        np.testing.assert_array_equal(numbers, expected)
        assert np.signbit(numbers).tolist() == np.signbit(expected).tolist()


@pytest.mark.parametrize("line", ["1.234567x,2.000000", "1.234567,2.000000,", "1.234567 2.000000", "1.234567.5,2.000000",
                                  "1.234567,2.000000 x", "-1.234567,--2.000000"])
def test_fast_reader_refuses_what_follows_a_predicted_shape(line):
    """A number of the predicted shape must end the cell: anything else after it is not read past."""
    text = "0.500000,1.500000\n" * 20 + line + "\n" + "0.500000,1.500000\n" * 20
    table = inputs.parse_text("t.csv", text.encode(), delimiter=",", header=False)
    assert table._fast_numbers is None  # the C reader stops at the line: the slow reader names what is wrong


@pytest.mark.parametrize("line", ["1.234567,2.000000\n3.000000", "1.234567,2.000000,3.000000,4.000000", "-1.234567,\r2.000000,3.000000",
                                  "1.234567;2.000000;3.000000", "1.234567,2.000000,3.000000\r\r"])
def test_the_c_reader_refuses_a_row_of_another_width_at_its_line(line):
    """A row of whole cells of the predicted shape is read a row at a time: a
    line end among its first cells, or a delimiter after its last, is its
    error, never a cell of the next line."""
    good = "0.500000,-1.500000,2.500000\n"
    text = (good * 20 + line + "\n" + good * 20).encode()
    out = np.zeros((64, 3))
    assert inputs._fastcsv.parse(text, ord(","), 3, out) == (0, len(good) * 20)


@pytest.mark.parametrize("last", ["7", "12", "123", "-4.5", "0.25", "1e3", "+.5"])
def test_fast_reader_reads_a_number_at_the_very_end(last):
    """A file whose last line has no newline ends in the middle of the reader's two-digit steps."""
    table = inputs.parse_text("t.txt", f"0.5,1.5\n3,{last}".encode(), delimiter=",")
    assert table._fast_numbers is not None
    np.testing.assert_array_equal(table.numbers(range(2)), [[0.5, 1.5], [3.0, float(last)]])


def test_fast_reader_chunks_blank_lines_and_comments(monkeypatch):
    monkeypatch.setattr(inputs, "PARSE_CHUNK_BYTES", 64)
    monkeypatch.setattr(inputs, "PARSE_THREADS", 4)
    lines = []
    for i in range(200):
        lines.append(f"{i},{i * 0.5}")
        if i % 17 == 0:
            lines += ["", "# a comment", "   "]
    text = "a,b\r\n" + "\r\n".join(lines)  # CRLF, no final newline
    table = inputs.parse_text("t.csv", text.encode())
    fast = table.numbers([0, 1])
    np.testing.assert_array_equal(fast, np.array([[i, i * 0.5] for i in range(200)]))
    assert table.locate(199) == f"t.csv:{text.count(chr(10)) + 1}"


def data_lines(text: bytes) -> int:
    """The rows of a piece of text as the C reader counts them: lines neither blank nor comments."""
    return sum(1 for line in text.split(b"\n") if line.lstrip(b" \t")[:1] not in (b"", b"\r", b"#"))


def test_row_and_newline_counters_agree_with_python():
    """count_rows takes 16 bytes at a time unless a line may be blank or a comment
    (then line by line): random text with every such byte, cut anywhere, against Python."""
    counter = inputs._fastcsv
    rng = random.Random(5)
    alphabet = [b"1", b"2", b".", b",", b"\n", b" ", b"\t", b"\r", b"#", b"\0", b"-", b'"', b"\xc3"]
    weights = [20, 20, 5, 8, 6, 1, 1, 1, 1, 0.2, 3, 0.3, 0.3]
    clean = 0
    for _ in range(6000):
        text = b"".join(rng.choices(alphabet, weights, k=rng.choice([0, 1, 2, 15, 16, 17, 33, 300, 5000])))
        if rng.random() < 0.6:  # mostly data lines: the one-pass count's own case
            for byte in (b"\0", b"#", b"\r", b" ", b"\t"):
                text = text.replace(byte, b"")
            while b"\n\n" in text:
                text = text.replace(b"\n\n", b"\n")
            clean += 1
        start = rng.randint(0, len(text))
        end = rng.randint(start, len(text))
        nul = text.find(b"\0", start, end)
        cut = rng.randint(start, end)  # two chunks, as a thread counts a run of them
        counts = np.empty(2, dtype=np.int64)
        assert counter.count_rows(text, np.array([start, cut, end]), counts) == nul, (text, start, end)
        assert counts.tolist() == [data_lines(text[start:cut]), data_lines(text[cut:end])], (text, start, cut, end)
        assert counter.count_newlines(text, start, end) == text.count(b"\n", start, end)
    assert clean > 3000


def test_slow_reader_agrees_with_the_fast_one(monkeypatch, tmp_path):
    rng = random.Random(4)
    rows = [random_numbers(rng, 4) for _ in range(500)]
    path = tmp_path / "x.csv"
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")
    fast = inputs.parse_text(str(path), path.read_bytes()).numbers(range(4))
    monkeypatch.setattr(inputs, "_fastcsv", None)
    slow = inputs.parse_text(str(path), path.read_bytes()).numbers(range(4))
    np.testing.assert_array_equal(fast, slow)


def test_quoted_numbers_fall_back_and_read_right(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('"1.5","2.5"\n"0.5",1\n')
    labels = tmp_path / "y.csv"
    labels.write_text("0\n1\n")
    expected = float(F.cross_entropy(torch.tensor([[1.5, 2.5], [0.5, 1.0]], dtype=torch.float64), torch.tensor([0, 1])))
    assert xent_json(path, labels)["loss"] == pytest.approx(expected, rel=1e-15)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_on_a_terminal_after_a_while(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(progress, "SHOW_AFTER_SECONDS", 0.0)
    with progress.progress_bar(quiet=False, total=10, streams=Streams(io.StringIO(), terminal)) as advance:
        assert advance is not None
        advance(5)
        advance(5)
    assert "computing" in terminal.getvalue() and "10/10" in terminal.getvalue()


def test_progress_bar_never_in_pipes_or_when_quiet():
    with progress.progress_bar(quiet=False, total=10, streams=Streams(io.StringIO(), io.StringIO())) as advance:
        assert advance is None
    with progress.progress_bar(quiet=False, total=10, streams=Streams(io.StringIO(), None)) as advance:
        assert advance is None  # stderr closed
    with progress.progress_bar(quiet=True, total=10, streams=Streams(io.StringIO(), FakeTerminal())) as advance:
        assert advance is None


def test_quick_runs_show_no_bar():
    terminal = FakeTerminal()
    with progress.progress_bar(quiet=False, total=10, streams=Streams(io.StringIO(), terminal)) as advance:
        advance(10)
    assert terminal.getvalue() == ""


def test_json_of_many_files_is_valid(shards):
    folder, _ = shards
    result = xent("compute", str(folder / "x" / "*.npy"), str(folder / "y" / "*.npy"), "--format", "json")
    assert json.loads(result.stdout)["files"][2]["labels"].endswith("part2.npy")


def test_labels_read_ahead_give_what_reading_in_turn_gives(tmp_path, monkeypatch):
    """The labels file is read on a helper thread while the logits are (streamed
    here): the numbers, and each error with its place, are those of reading the
    files in turn, whichever file is bad."""
    from xentcli.readers import batch

    monkeypatch.setattr(inputs, "STREAM_BYTES", 1 << 10)
    monkeypatch.setattr(inputs, "STREAM_CHUNK_BYTES", 1 << 9)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(400, 3))
    target = rng.integers(0, 3, size=400)
    logits, labels, bad_logits, bad_labels = (tmp_path / name for name in ("x.csv", "y.csv", "bx.csv", "by.csv"))
    np.savetxt(logits, x, fmt="%.17g", delimiter=",")
    np.savetxt(labels, target, fmt="%d")
    text = logits.read_text().splitlines()
    text[300] = "0.1,oops,0.3"
    bad_logits.write_text("\n".join(text) + "\n")
    text = labels.read_text().splitlines()
    text[250] = "2.5"
    bad_labels.write_text("\n".join(text) + "\n")
    expected = float(F.cross_entropy(torch.from_numpy(x), torch.from_numpy(target)))
    assert xent_json(logits, labels)["loss"] == pytest.approx(expected, rel=1e-12)
    cases = [(logits, bad_labels), (bad_logits, labels), (bad_logits, bad_labels), (bad_logits, tmp_path / "none.csv")]
    helpers = []
    read_ahead = batch._read_ahead
    monkeypatch.setattr(batch, "_read_ahead", lambda path, options: helpers.append(read_ahead(path, options)) or helpers[-1])
    ahead = [assert_user_error(xent("compute", a, b)) for a, b in cases]
    assert [helper is not None for helper in helpers] == [True, True, True, False]  # a file that is not there: in turn
    monkeypatch.setattr(batch, "READ_AHEAD_BYTES", 100)  # a large labels file is read in turn: Ctrl-C waits for no thread
    assert xent_json(logits, labels)["loss"] == pytest.approx(expected, rel=1e-12)
    assert helpers[-1] is None
    monkeypatch.setattr(batch, "_read_ahead", lambda path, options: None)
    in_turn = [assert_user_error(xent("compute", a, b)) for a, b in cases]
    assert ahead == in_turn
    assert f"{bad_labels}:251:" in ahead[0] and f"{bad_logits}:301:" in ahead[1] and "none.csv" in ahead[3]


@pytest.mark.parametrize("case", ["smoothing", "soft", "weights", "probs"])
def test_the_numpy_paths_total_does_not_depend_on_where_blocks_begin(monkeypatch, case):
    """A block's sum is kept as an exact big part and a small one, fsum'd over
    blocks, as the C kernel's compensated sums are: the same batch in blocks
    of 4096, 97 or 7 rows gives the same total to the last bit (a CSV read
    whole and a chunk at a time gave totals an ulp apart, found by the
    streamed fuzz), and torch agrees to float64's rounding."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(3001, 6)) * 4
    target = rng.integers(0, 6, size=3001)
    options: dict = {}
    if case == "smoothing":
        options = {"label_smoothing": 0.1}
    elif case == "soft":
        target = rng.dirichlet(np.ones(6), size=3001)
    elif case == "weights":
        options = {"label_smoothing": 0.05, "weight": rng.random(6) + 0.5}
    else:
        x = np.exp(x) / np.exp(x).sum(1, keepdims=True)
        options = {"input": "probs"}
    totals = set()
    for rows in (4096, 97, 7):
        monkeypatch.setattr(backends, "NUMPY_BLOCK_ROWS", rows)
        result = xentcli.cross_entropy(x, target, keep_rows=False, **options)
        totals.add((result.sum, result.loss))
    assert len(totals) == 1, totals
    if case != "probs":
        kwargs = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
        expected = float(F.cross_entropy(torch.from_numpy(x), torch.from_numpy(target), **kwargs))
        assert totals.pop()[1] == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("options", [(), ("--label-smoothing", "0.1"), ("--weight", "0.3,1.7,0.9,1.1,2.3"), ("--task", "multilabel")])
def test_files_read_one_after_another_give_one_files_digits(tmp_path, options):
    """Each file's Result carries what rounding its sum left out, and combine()
    adds it back: three parts give the sum of the whole to the last bit, and
    the loss too where the mean divides by a count. Without it a fifth of
    these cases were an ulp off. With fractional class weights the mean
    divides by numpy's sum of the row weights, as the libraries do: per file,
    then added, it may differ from one file's in the last bit."""
    for seed in range(8):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(3000, 5)) * 3
        y = rng.integers(0, 2 if "--task" in options else 5, size=(3000, 5) if "--task" in options else 3000)
        folder = tmp_path / str(seed)
        (folder / "x").mkdir(parents=True)
        (folder / "y").mkdir()
        np.save(folder / "all_x.npy", x)
        np.save(folder / "all_y.npy", y)
        for k, (a, b) in enumerate([(0, 1000), (1000, 2200), (2200, 3000)]):
            np.save(folder / "x" / f"part{k}.npy", x[a:b])
            np.save(folder / "y" / f"part{k}.npy", y[a:b])
        whole = xent_json(folder / "all_x.npy", folder / "all_y.npy", *options)
        parts = xent_json(str(folder / "x" / "*.npy"), str(folder / "y" / "*.npy"), *options)
        assert parts["sum"] == whole["sum"], (seed, parts["sum"], whole["sum"])
        if "--weight" in options:
            assert parts["loss"] == pytest.approx(whole["loss"], rel=4e-16)
        else:
            assert parts["loss"] == whole["loss"], (seed, parts["loss"], whole["loss"])


def test_the_split_sum_is_exact_where_it_can_be_and_plain_elsewhere():
    """sum_split's big part adds up exactly; inf, NaN and values near overflow
    take the plain sum (no OverflowError from the grid, no inf - inf)."""
    rng = np.random.default_rng(13)
    for scale in (1e-300, 1e-5, 1.0, 1e5, 1e290):
        x = rng.normal(size=1001) * scale
        big, small = backends.sum_split(x)
        assert math.fsum([big, small]) == pytest.approx(math.fsum(x), rel=1e-15, abs=1e-320)
        halves = [backends.sum_split(x[:500]), backends.sum_split(x[500:])]
        assert math.fsum([p for pair in halves for p in pair]) == math.fsum([big, small])
    assert backends.sum_split(np.zeros(0)) == (0.0, 0.0)
    assert backends.sum_split(np.zeros(5)) == (0.0, 0.0)
    assert backends.sum_split(np.array([1.0, math.inf])) == (math.inf, 0.0)
    assert math.isnan(backends.sum_split(np.array([1.0, math.nan]))[0])
    with np.errstate(over="ignore"):  # numpy's own sum overflows there too
        assert backends.sum_split(np.array([1e308, 1e308, -1e308])) == (math.inf, 0.0)
    assert backends.sum_split(np.array([-3.0, 1.0])) == (-2.0, 0.0)
    assert backends.sum_split(np.full(5, 1e307)) == (5e307, 0.0)  # finite, but a grid above it would overflow
