"""Bugs a review found, each pinned by the reproduction that showed it."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xentcli
from conftest import SAMPLES, assert_user_error, write_csv, xent, xent_json
from xentcli.readers import text as inputs


@pytest.mark.parametrize("fast", [True, False])
def test_a_longer_row_is_refused_not_truncated(tmp_path, monkeypatch, fast):
    if not fast:
        monkeypatch.setattr(inputs, "_fastcsv", None)
    path = tmp_path / "x.csv"
    path.write_text("1,2,3\n3,1,0,4\n0,0,5\n")
    labels = write_csv(tmp_path / "y.csv", [0, 1, 2])
    assert_user_error(xent("compute", path, labels), f"{path}:2:", "4 columns but the first row has 3")


def test_label_column_of_names_without_a_header_keeps_the_first_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("".join((SAMPLES / "animals.csv").read_text().splitlines(keepends=True)[1:]))
    data = xent_json(path, "--label-col", "3", "--classes", "cat,dog,bird")
    assert data["rows"] == 8


def test_a_labels_file_with_an_id_column_is_not_soft_labels(tmp_path):
    logits = write_csv(tmp_path / "x.csv", [[1, 2], [3, 1], [0, 2]])
    labels = tmp_path / "y.csv"
    labels.write_text("id,label\n0,1\n1,0\n2,1\n")
    data = xent_json(logits, labels)
    expected = float(F.cross_entropy(torch.tensor([[1.0, 2], [3, 1], [0, 2]], dtype=torch.float64), torch.tensor([1, 0, 1])))
    assert data["soft_labels"] is False and data["loss"] == pytest.approx(expected, rel=1e-15)


@pytest.fixture
def shards(tmp_path):
    rng = np.random.default_rng(3)
    logits, target = rng.normal(size=(30, 4)), rng.integers(0, 4, size=30)
    for k in range(3):
        np.save(tmp_path / f"x{k}.npy", logits[10 * k : 10 * k + 10])
        np.save(tmp_path / f"y{k}.npy", target[10 * k : 10 * k + 10])
    return tmp_path, logits, target


def test_sample_weights_run_on_across_files(shards):
    folder, logits, target = shards
    weights = np.linspace(0.5, 2, 30)
    write_csv(folder / "w.csv", weights)
    data = xent_json(str(folder / "x*.npy"), str(folder / "y*.npy"), "--sample-weight", folder / "w.csv")
    assert data["loss"] == pytest.approx(xentcli.cross_entropy(logits, target, sample_weight=weights).loss, rel=1e-12)
    write_csv(folder / "short.csv", weights[:10])
    assert_user_error(xent("compute", str(folder / "x*.npy"), str(folder / "y*.npy"), "--sample-weight", folder / "short.csv"),
                      contains="--sample-weight has 10 values")


def test_keras_all_ignored_is_zero_across_files(shards):
    folder, *_ = shards
    for k in range(3):
        np.save(folder / f"y{k}.npy", np.full(10, -100))
    result = xent("compute", str(folder / "x*.npy"), str(folder / "y*.npy"), "--convention", "keras", "-f", "value")
    assert float(result.stdout) == 0.0


@pytest.mark.parametrize(
    "options",
    [["--sample-weight", "SAMPLE"], ["--input", "probs", "--convention", "keras"],
     ["--convention", "keras", "--weight", "1,3,1", "--label-smoothing", "0.2"]],
)
def test_the_table_shows_the_rows_csv_gives(tmp_path, options):
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(3), size=3) * 0.9
    path = write_csv(tmp_path / "x.csv", probs if "probs" in options else np.log(probs))
    labels = write_csv(tmp_path / "y.csv", [0, 1, 2])
    write_csv(tmp_path / "s.csv", [2, 1, 0.5])
    options = [str(tmp_path / "s.csv") if o == "SAMPLE" else o for o in options]
    rows = list(csv.DictReader(io.StringIO(xent("compute", path, labels, *options, "-f", "csv").stdout)))
    table = xent("compute", path, labels, *options, "--precision", "6", env={"COLUMNS": "200"}).stdout
    for row in rows:
        assert f"{float(row['loss']):.6f}" in table


def test_compare_without_counted_rows_and_without_resamples(tmp_path):
    rng = np.random.default_rng(5)
    np.save(tmp_path / "a.npy", rng.normal(size=(6, 3)))
    np.save(tmp_path / "b.npy", rng.normal(size=(6, 3)))
    np.save(tmp_path / "none.npy", np.full(6, -100))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, size=6))
    assert xent("compare", tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "none.npy").exit_code == 0
    data = json.loads(xent("compare", tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "y.npy", "--resamples", "0", "-f", "json").stdout)
    assert data["significant"] is False
    same = xent("compare", tmp_path / "a.npy", tmp_path / "a.npy", tmp_path / "y.npy")
    assert "new is the same" in same.stdout


@pytest.mark.parametrize("delimiter", [",,", ""])
def test_a_delimiter_is_one_character(delimiter):
    assert_user_error(xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--delimiter", delimiter),
                      contains="--delimiter takes one character")


def test_class_axis_zero(tmp_path):
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(5, 6))  # (classes, rows)
    target = rng.integers(0, 5, size=6)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", target)
    expected = float(F.cross_entropy(torch.from_numpy(logits.T), torch.from_numpy(target)))
    assert xent_json(tmp_path / "x.npy", tmp_path / "y.npy", "--class-axis", "0")["loss"] == pytest.approx(expected, rel=1e-12)


def test_top_1_accuracy_is_accuracy_even_with_ties():
    from xentcli.engine.metrics import MetricOptions

    result = xentcli.cross_entropy(np.zeros((4, 5)), np.array([0, 1, 2, 4]), metrics=MetricOptions(top_k=1))
    assert result.metrics.top_k_accuracy == result.accuracy == 0.25


@pytest.mark.parametrize("text", ["precision: 99\n", "rows: -1\n", "top_k: 0\n", "label_smoothing: 2\n"])
def test_config_values_are_checked_like_the_command_line(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "xent.yaml").write_text(text)
    assert_user_error(xent("compute"), f"{tmp_path / 'xent.yaml'}:1:", "must be")


def test_clear_messages(tmp_path):
    labels = tmp_path / "y.csv"
    labels.write_text("0\n1\nx\n")
    assert_user_error(xent("compute", SAMPLES / "logits.csv", labels), f"{labels}:3:", "'x'")
    labels.write_text("0\n1\n1.5\n")
    assert_user_error(xent("compute", SAMPLES / "logits.csv", labels), f"{labels}:3:", "label 1.5 is not a class index")
    np.save(tmp_path / "twos.npy", 2 * np.eye(5, dtype=np.int64)[[3, 0, 2]])
    np.save(tmp_path / "x.npy", np.loadtxt(SAMPLES / "logits.csv", delimiter=","))
    assert_user_error(xent("compute", tmp_path / "x.npy", tmp_path / "twos.npy"), contains="one-hot matrix of 0 and 1")
    np.save(tmp_path / "int.npy", np.zeros((3, 5), dtype=np.int64))
    assert_user_error(xent("compute", tmp_path / "int.npy", SAMPLES / "labels.csv"), str(tmp_path / "int.npy"), "floating point")
    (tmp_path / "dir.npy").mkdir()
    assert_user_error(xent("compute", tmp_path / "dir.npy", SAMPLES / "labels.csv"), contains="is a directory")
    assert_user_error(xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--classes", "a,b"),
                      contains="2 class names")
    assert_user_error(xent("compute", SAMPLES / "animals.csv"), contains="--label-col")
    assert_user_error(xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--fail-above", "nan"), contains="NaN")
    assert_user_error(xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--weight", "w.csv"), "w.csv", "no such file")


def test_one_shown_row_still_marks_the_gap(tmp_path):
    logits = write_csv(tmp_path / "x.csv", np.random.default_rng(0).normal(size=(5, 2)).round(3))
    labels = write_csv(tmp_path / "y.csv", [0, 1, 0, 1, 0])
    assert "⋮" in xent("compute", logits, labels, "--rows", "1").stdout


def test_a_missing_output_folder_fails_before_the_work(tmp_path):
    result = xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "-f", "value", "--save-svg", tmp_path / "no" / "a.svg")
    assert_user_error(result, str(tmp_path / "no" / "a.svg"), "no such folder")
