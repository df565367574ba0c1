"""Text labels made class indices by the reader: whole numbers become int64
(in place, in the C reader), anything else is left for the messages that name it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_user_error, torch_loss, write_csv, xent, xent_json
from xentcli import _fastcsv
from xentcli.readers.text import parse_text

EXACT = 2.0**53
NOT_INDICES = [1.5, -0.25, np.nan, np.inf, -np.inf, EXACT, -EXACT, 1e300, 2.0**63, -(2.0**63), 1e-300]


def test_whole_floats_become_their_int64_in_place():
    rng = np.random.default_rng(1)
    values = np.concatenate([
        rng.integers(-1000, 1000, size=500).astype(np.float64),
        [0.0, -0.0, -100.0, EXACT - 1, -(EXACT - 1), 2.0**52 + 1, -(2.0**40) - 3],
    ])
    rng.shuffle(values)
    expected = values.astype(np.int64)  # numpy's cast: exact for whole floats below 2^53
    assert _fastcsv.indices(values) == -1
    assert np.array_equal(values.view(np.int64), expected)


@pytest.mark.parametrize("bad", NOT_INDICES)
def test_a_float_that_is_not_an_index_leaves_every_value_as_it_was(bad):
    rng = np.random.default_rng(2)
    values = rng.integers(0, 9, size=3000).astype(np.float64)
    first = int(rng.integers(1500, 2999))  # past the first blocks the C reader converts, then turns back
    values[first] = bad
    values[-1] = 0.5  # a later one: the first is named
    before = values.tobytes()
    assert _fastcsv.indices(values) == first
    assert values.tobytes() == before


def test_a_one_column_table_gives_its_numbers_away_and_parses_again(tmp_path):
    path = write_csv(tmp_path / "y.csv", [3, 0, 2, 1])
    table = parse_text(str(path), path.read_bytes())
    taken = table.column(0)
    assert _fastcsv.indices(taken) == -1  # the labels' reader changes them in place
    again = table.column(0)
    assert again.dtype == np.float64 and again.tolist() == [3.0, 0.0, 2.0, 1.0]


@pytest.mark.parametrize("layout", ["one column", "pandas index"])
@pytest.mark.parametrize("large", [False, True])
def test_whole_labels_written_any_way_give_torchs_loss(tmp_path, request, layout, large):
    if large:  # the streamed path, chunk by chunk
        request.getfixturevalue("streamed")
    rng = np.random.default_rng(3)
    logits, target = rng.normal(size=(80, 4)), rng.integers(0, 4, size=80)
    target[::7] = -100
    cells = [f"{t}.0" if k % 3 == 0 else (f"{t}e0" if k % 3 == 1 else str(t)) for k, t in enumerate(target)]
    write_csv(tmp_path / "x.csv", logits)
    labels = tmp_path / "y.csv"
    if layout == "one column":
        labels.write_text("\n".join(cells) + "\n")
    else:
        labels.write_text(",label\n" + "".join(f"{k},{c}\n" for k, c in enumerate(cells)))
    data = xent_json(tmp_path / "x.csv", labels)
    assert data["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize(("cell", "message"), [
    ("9007199254740993", "label 9007199254740993 is out of range (far beyond any class index)"),
    ("9007199254740992", "label 9007199254740992 is out of range (far beyond any class index)"),
    ("-1e300", "label -1e300 is out of range (far beyond any class index)"),
    ("9007199254740991", "label 9007199254740991 is out of range for 3 classes"),
    ("2.5", "label 2.5 is not a class index (an integer)"),
])
def test_labels_that_are_no_class_index_are_named_on_their_line(tmp_path, request, large, cell, message):
    if large:
        request.getfixturevalue("streamed")
    rng = np.random.default_rng(4)
    write_csv(tmp_path / "x.csv", rng.normal(size=(60, 3)))
    cells = [str(t) for t in rng.integers(0, 3, size=60)]
    cells[41] = cell
    labels = tmp_path / "y.csv"
    labels.write_text("\n".join(cells) + "\n")
    assert_user_error(xent("compute", tmp_path / "x.csv", labels), f"{labels}:42:", message)


def test_the_readers_own_labels_change_in_place_and_a_view_of_a_table_never():
    from xentcli.readers.labels import as_indices

    def written(row):
        raise AssertionError("no label is refused")

    own = np.array([3.0, 0.0, 2.0, -100.0])
    out = as_indices(own, str, written)
    assert out.dtype == np.int64 and out.tolist() == [3, 0, 2, -100] and np.shares_memory(out, own)
    table = np.array([[0.0, 3.0], [1.0, 0.0], [2.0, 2.0]])  # a pandas index beside the labels
    out = as_indices(table[:, 1], str, written)
    assert out.dtype == np.int64 and out.tolist() == [3, 0, 2]
    assert table.tolist() == [[0.0, 3.0], [1.0, 0.0], [2.0, 2.0]]
    kept = np.array([3.0, 0.5])
    assert as_indices(kept, str, written) is kept and kept.tolist() == [3.0, 0.5]


def plain_lines(rng, count):
    """Random class indices as a person or a library writes them: signs, 1-15 digits, LF or CRLF."""
    values = [int(rng.integers(0, 10 ** int(rng.integers(1, 16)))) * (1 if rng.random() < 0.8 else -1) for _ in range(count)]
    cells = [("+" if v >= 0 and rng.random() < 0.1 else "") + str(v) for v in values]
    if rng.random() < 0.3:
        cells = [("-" if v < 0 else "") + str(abs(v)).zfill(int(rng.integers(1, 16))) for v in values]  # leading zeros
    ends = ["\r\n" if rng.random() < 0.3 else "\n" for _ in cells]
    return values, "".join(c + e for c, e in zip(cells, ends))


def test_a_column_of_integers_is_read_as_pythons_int_reads_it():
    rng = np.random.default_rng(5)
    for _ in range(200):
        values, text = plain_lines(rng, int(rng.integers(0, 40)))
        if rng.random() < 0.5:
            text = text.rstrip("\r\n")  # the last line without its end
        out = np.full(len(values) + 2, 99, dtype=np.int64)
        assert _fastcsv.parse_indices(text.encode(), out) == (len(values), -1), text
        assert out[: len(values)].tolist() == values


@pytest.mark.parametrize("line", ["", "2.0", "1e3", " 3", "3 ", "\t3", "3,4", "-", "+", "3#", "#3", "1234567890123456",
                                  "-1234567890123456", "3\x00", "٣", "0x3", "nan", "--3"])
def test_any_other_line_sends_the_column_to_the_general_parser(line):
    text = f"1\n22\n{line}\n4\n".encode()
    out = np.zeros(8, dtype=np.int64)
    rows, error = _fastcsv.parse_indices(text, out)
    assert (rows, error) == (2, 5), (line, rows, error)  # named at its line's first byte


def test_more_lines_than_room_is_an_error_not_a_write_past_the_end():
    out = np.zeros(3, dtype=np.int64)
    guard = np.zeros(5, dtype=np.int64)
    assert _fastcsv.parse_indices(b"1\n2\n3\n4\n", guard[:3]) == (3, 6)
    assert guard.tolist() == [1, 2, 3, 0, 0]
    assert _fastcsv.parse_indices(b"1\n2\n", out) == (2, -1)


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("form", ["plain", "header", "crlf", "no last newline", "floats", "blank line", "comment",
                                  "sixteen digits", "spaces", "pandas index", "names", "numbers as names"])
def test_labels_give_the_same_json_through_the_integer_reader_or_not(tmp_path, request, monkeypatch, large, form):
    if large:
        request.getfixturevalue("streamed")
    rng = np.random.default_rng(6)
    logits, target = rng.normal(size=(50, 4)), rng.integers(0, 4, size=50)
    target[::9] = -100
    write_csv(tmp_path / "x.csv", logits, header=None if form != "names" else list("abcd"))
    cells = [str(t) for t in target]
    lines = {
        "plain": cells, "header": ["label", *cells], "crlf": [c + "\r" for c in cells], "no last newline": cells,
        "floats": [c + ".0" if k % 2 else c for k, c in enumerate(cells)], "blank line": [*cells[:20], "", *cells[20:]],
        "comment": ["# labels", *cells], "sixteen digits": [*cells[:-1], "0000000000000003"],
        "spaces": [f" {c}" for c in cells], "pandas index": [",label", *(f"{k},{c}" for k, c in enumerate(cells))],
        "names": ["label", *("abcd"[t] if t >= 0 else "a" for t in target)],
        "numbers as names": [str(10 * (t + 1)) if t >= 0 else "10" for t in target],  # --classes 10,20,30,40
    }[form]
    labels = tmp_path / "y.csv"
    labels.write_text("\n".join(lines) + ("" if form == "no last newline" else "\n"))
    args = (tmp_path / "x.csv", labels, "--per-row", *(["--classes", "10,20,30,40"] if form == "numbers as names" else []))
    fast = xent("compute", *args, "--format", "json")
    from xentcli.readers import text

    monkeypatch.setattr(text.TextTable, "indices", lambda self: None)
    general = xent("compute", *args, "--format", "json")
    assert fast.exit_code == general.exit_code == 0, (fast.stderr, general.stderr)
    assert fast.stdout == general.stdout
    if form in ("plain", "header", "crlf"):
        assert json.loads(fast.stdout)["loss"] == pytest.approx(torch_loss(logits, target), rel=1e-12)


def test_a_one_column_table_of_integers_gives_int64_and_any_other_none(tmp_path):
    def table(text):
        path = tmp_path / "t.csv"
        path.write_text(text)
        return parse_text(str(path), path.read_bytes())

    assert table("label\n3\n0\n-100\n").indices().tolist() == [3, 0, -100]
    assert table("label\n3\n0\n-100\n").indices().dtype == np.int64
    assert table("3\n0.5\n").indices() is None
    assert table("a,b\n3,1\n0,2\n").indices() is None
    assert table("3\n0\n").rows == 2 and table("3\n\n0\n").rows == 2
