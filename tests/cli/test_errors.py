"""Every user error: exit 2, one `xent: error: <where>: <what>` line, no traceback."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from conftest import SAMPLES, assert_user_error, write_csv, xent

LOGITS = SAMPLES / "logits.csv"
LABELS = SAMPLES / "labels.csv"


def compute(*args, **kwargs):
    return xent("compute", *[str(a) for a in args], "--format", "value", **kwargs)


def test_missing_file(tmp_path):
    assert_user_error(compute(tmp_path / "nope.csv", LABELS), f"{tmp_path / 'nope.csv'}: no such file")


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    assert_user_error(compute(tmp_path / "d.csv", LABELS), f"{tmp_path / 'd.csv'}:", "directory")


def test_refused_extension(tmp_path):
    path = tmp_path / "x.h5"
    path.write_text("1,2\n")
    assert_user_error(compute(path, LABELS), str(path), "HDF5, which xent does not read")


def test_text_named_parquet(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_text("1,2\n")
    assert_user_error(compute(path, LABELS), str(path), "not a Parquet file")


def test_ragged_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,2,3\n4,5,6\n7,8\n")
    assert_user_error(compute(path, LABELS), f"{path}:3:", "2 columns but the first row has 3")


def test_non_numeric_cell_names_line_and_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,2,3\n4,abc,6\n7,8,9\n")
    assert_user_error(compute(path, LABELS), f"{path}:2:2:", "'abc' is not a number")


def test_decimal_comma_is_explained(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,5;2,5;0,1\n0,5;2;1\n3;4;5\n")
    line = assert_user_error(compute(path, LABELS), f"{path}:1:1:")
    assert "decimal comma" in line


def test_numpy_reprs_under_a_header_are_named_where_they_are(tmp_path):
    """numpy 2's repr(np.float64(0.5)) is np.float64(0.5): a file written with it holds no
    numbers; the error names the first such cell (line 2, under the header), not the header."""
    path = tmp_path / "x.csv"
    rows = np.random.default_rng(0).normal(size=(3, 5))
    path.write_text("c0,c1,c2,c3,c4\n" + "".join(",".join(repr(v) for v in row) + "\n" for row in rows))
    line = assert_user_error(compute(path, LABELS), f"{path}:2:1:", f"'np.float64({float(rows[0, 0])!r})' is not a number")
    assert "numpy's repr" in line


def test_names_above_names_in_logits_name_the_cell_below(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("cat,dog,bird\nlow,high,mid\n")
    labels = write_csv(tmp_path / "y.csv", [0])
    assert_user_error(compute(path, labels), f"{path}:2:1:", "'low' is not a number")


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "x.csv"
    path.write_text(content)
    assert_user_error(compute(path, LABELS), str(path), "empty")


def test_header_without_rows(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n")
    assert_user_error(compute(path, LABELS), str(path), "no data rows")


def test_row_count_mismatch(tmp_path):
    labels = write_csv(tmp_path / "y.csv", [1, 2])
    assert_user_error(compute(LOGITS, labels), contains="2 rows of labels but")


def test_label_out_of_range(tmp_path):
    labels = write_csv(tmp_path / "y.csv", [1, 7, 2], header=["label"])
    assert_user_error(compute(LOGITS, labels), f"{labels}:3:", "label 7 is out of range for 5 classes")


def test_label_not_an_integer(tmp_path):
    labels = write_csv(tmp_path / "y.csv", [1, 2.5, 2])
    assert_user_error(compute(LOGITS, labels), f"{labels}:2:", "not a class index")


def test_unknown_class_name_lists_the_known_ones(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("cat,dog,label\n1,2,cat\n3,4,cow\n")
    line = assert_user_error(compute(path, "--label-col", "label"), f"{path}:3:", "unknown class 'cow'")
    assert "cat, dog" in line


def test_class_names_without_names(tmp_path):
    labels = write_csv(tmp_path / "y.csv", ["cat", "dog", "cat"])
    assert_user_error(compute(LOGITS, labels), contains="class names are unknown")


@pytest.mark.parametrize("bad,what", [("nan", "NaN"), ("inf", "+inf")])
def test_nan_and_inf_logits(tmp_path, bad, what):
    path = tmp_path / "x.csv"
    path.write_text(f"1,2,3,4,5\n1,{bad},3,4,5\n1,2,3,4,5\n")
    assert_user_error(compute(path, LABELS), f"{path}:2:", f"contain {what}")


def test_nan_in_npy_names_the_index(tmp_path):
    logits = np.zeros((4, 3, 2))
    logits[2, 1, 1] = np.nan
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", np.zeros((4, 2), dtype=np.int64))
    assert_user_error(compute(tmp_path / "x.npy", tmp_path / "y.npy"), f"{tmp_path / 'x.npy'}[2, 1]:", "NaN")


def test_row_of_only_minus_inf(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[0.0, 1.0], [-np.inf, -np.inf]]))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    assert_user_error(compute(tmp_path / "x.npy", tmp_path / "y.npy"), f"{tmp_path / 'x.npy'}[1]:", "-inf in every class")


def test_wrong_npy_dtype(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 5), dtype=np.int64))
    assert_user_error(compute(tmp_path / "x.npy", LABELS), contains="logits must be floating point")


def test_wrong_label_shape(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 5)))
    np.save(tmp_path / "y.npy", np.zeros((3, 2), dtype=np.int64))
    assert_user_error(compute(tmp_path / "x.npy", tmp_path / "y.npy"), contains="labels have shape (3, 2)")


def test_pickled_npy_is_refused_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    np.save(tmp_path / "x.npy", np.array([Boom()], dtype=object), allow_pickle=True)
    assert_user_error(compute(tmp_path / "x.npy", LABELS), str(tmp_path / "x.npy"), "pickled")
    (tmp_path / "raw.npy").write_bytes(pickle.dumps(Boom()))
    assert_user_error(compute(tmp_path / "raw.npy", LABELS), str(tmp_path / "raw.npy"))
    assert not (tmp_path / "pwned").exists()


def test_pickled_npz_member_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", logits=np.array([{"a": 1}], dtype=object), labels=np.array([0]))
    assert_user_error(compute(tmp_path / "d.npz"), f"{tmp_path / 'd.npz'}[logits]", "pickled")


def test_npz_needs_a_key_when_ambiguous(tmp_path):
    np.savez(tmp_path / "d.npz", a=np.zeros((3, 5)), b=np.zeros((3, 5)))
    assert_user_error(compute(tmp_path / "d.npz", LABELS), str(tmp_path / "d.npz"), "--key")


def test_binary_garbage_as_text(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert_user_error(compute(path, LABELS), f"{path}:1")


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.csv.gz"
    path.write_bytes(b"\x1f\x8b not really gzip")
    assert_user_error(compute(path, LABELS), str(path), "decompress")


def test_both_inputs_from_stdin():
    assert_user_error(compute("-", "-", input="1\n"), contains="only one of LOGITS and LABELS")


def test_weight_length_mismatch():
    assert_user_error(compute(LOGITS, LABELS, "--weight", "1,2"), contains="2 values but there are 5 classes")


def test_weight_not_a_list():
    assert_user_error(compute(LOGITS, LABELS, "--weight", "heavy"), contains="--weight")


def test_label_smoothing_out_of_range():
    assert_user_error(compute(LOGITS, LABELS, "--label-smoothing", "1.5"), contains="label smoothing")


def test_probs_out_of_range(tmp_path):
    path = write_csv(tmp_path / "p.csv", [[0.5, 0.5], [1.5, -0.5], [0.1, 0.9]])
    labels = write_csv(tmp_path / "y.csv", [0, 1, 1])
    line = assert_user_error(compute(path, labels, "--input", "probs"), f"{path}:2:")
    assert "[0, 1]" in line


def test_unknown_label_column():
    assert_user_error(compute(SAMPLES / "animals.csv", "--label-col", "kind"), contains="no column named 'kind'")


def test_labels_missing():
    assert_user_error(compute(LOGITS), contains="no labels")


def test_bad_option_value_is_a_usage_error():
    result = compute(LOGITS, LABELS, "--reduction", "median")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("xent: error: ")


def test_unknown_option_is_a_usage_error():
    result = compute(LOGITS, LABELS, "--wieght", "1")
    assert result.exit_code == 2 and result.stderr.startswith("xent: error: No such option: --wieght")


def test_debug_shows_the_traceback(tmp_path):
    result = compute(tmp_path / "nope.csv", LABELS, "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "xent: error:" in result.stderr
