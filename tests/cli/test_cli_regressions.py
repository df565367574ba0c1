"""Regressions of the command line: options, messages, outputs and the config.

Each pins a bug a review found (a wrong number with exit 0, an exit 70, a
lost reading, a misleading message) by the reproduction that showed it;
expected values come from torch, scikit-learn or pandas on the arrays the
files were written from.
"""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import SAMPLES, assert_user_error, write_csv, xent


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


@pytest.mark.parametrize("delimiter", [",,", ""])
def test_a_delimiter_is_one_character(delimiter):
    assert_user_error(xent("compute", SAMPLES / "logits.csv", SAMPLES / "labels.csv", "--delimiter", delimiter),
                      contains="--delimiter takes one character")


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


def test_a_config_cannot_hide_its_own_announcement(tmp_path, monkeypatch, six_rows):
    logits, target = six_rows
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target)
    (tmp_path / "xent.yaml").write_text("quiet: true\nlabel_smoothing: 0.2\n")
    monkeypatch.chdir(tmp_path)
    result = xent("compute", "L.npy", "Y.npy", "--format", "value")
    assert "using the settings in" in result.stderr and "label_smoothing" in result.stderr


def test_negative_seed_is_a_usage_error(tmp_path, six_rows):
    logits, target = six_rows
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target)
    result = xent("compare", tmp_path / "L.npy", tmp_path / "L.npy", tmp_path / "Y.npy", "--seed", "-1")
    assert result.exit_code == 2 and "--seed" in result.stderr


def test_bidi_controls_are_escaped_in_errors(tmp_path):
    name = tmp_path / "evil\u202etxt.csv"
    result = xent("compute", name, tmp_path / "y.csv")
    assert result.exit_code == 2 and "\u202e" not in result.stderr and "\\u202e" in result.stderr


def test_output_keeps_hard_links(tmp_path, six_rows):
    logits, target = six_rows
    np.save(tmp_path / "L.npy", logits)
    np.save(tmp_path / "Y.npy", target)
    (tmp_path / "out.json").write_text("old\n")
    os.link(tmp_path / "out.json", tmp_path / "other.json")
    assert xent("compute", tmp_path / "L.npy", tmp_path / "Y.npy", "-f", "json", "-o", tmp_path / "out.json").exit_code == 0
    assert json.loads((tmp_path / "other.json").read_text())["rows"] == 6


def test_compare_says_a_notice_once(tmp_path, six_rows):
    logits, target = six_rows
    np.save(tmp_path / "A.npy", logits)
    np.save(tmp_path / "B.npy", logits * 0.5)
    pd.Series(target).to_csv(tmp_path / "Y.csv", index=False)  # its header `0` is said
    result = xent("compare", tmp_path / "A.npy", tmp_path / "B.npy", tmp_path / "Y.csv", "--format", "value")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("is a header") == 1
