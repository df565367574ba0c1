"""Each output format, the gate, -o and the environment's format."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from conftest import SAMPLES, SEED_LOGITS, SEED_TARGETS, write_csv, xent

SEED = (SAMPLES / "logits.csv", SAMPLES / "labels.csv")
EXACT_ROWS = F.cross_entropy(
    torch.from_numpy(SEED_LOGITS), torch.from_numpy(SEED_TARGETS), reduction="none"
).numpy()
EXACT = float(EXACT_ROWS.mean())


def run(*args, **kwargs):
    result = xent("compute", *SEED, *args, **kwargs)
    assert result.exit_code == 0, result.stderr
    return result


def test_value_is_the_full_precision_loss():
    assert float(run("--format", "value").stdout) == pytest.approx(EXACT, rel=1e-15)
    assert run("--format", "value").stdout.count("\n") == 1


def test_value_with_reduction_none_lists_every_row():
    values = [float(v) for v in run("--format", "value", "--reduction", "none").stdout.split()]
    np.testing.assert_allclose(values, EXACT_ROWS, rtol=1e-14)


def test_json_schema():
    data = json.loads(run("--format", "json").stdout)
    assert data["schema_version"] == 1
    for key in ("loss", "reduction", "sum", "mean", "weight_sum", "rows", "classes", "ignored",
                "accuracy", "backend", "device", "dtype", "inputs", "options"):
        assert key in data
    assert data["loss"] == pytest.approx(EXACT, rel=1e-15)
    assert data["sum"] == pytest.approx(EXACT_ROWS.sum(), rel=1e-15)
    assert data["accuracy"] == pytest.approx(1 / 3)
    assert data["perplexity"] == pytest.approx(math.exp(EXACT))
    assert data["inputs"] == {"logits": str(SEED[0]), "labels": str(SEED[1])}
    assert "per_row" not in data


def test_json_per_row_and_reduction_none():
    per_row = json.loads(run("--format", "json", "--per-row").stdout)["per_row"]
    none = json.loads(run("--format", "json", "--reduction", "none").stdout)
    assert none["loss"] is None and none["per_row"] == per_row
    assert list(per_row[0]) == ["row", "target", "p_target", "log_p_target", "loss", "pred"]
    np.testing.assert_allclose([r["loss"] for r in per_row], EXACT_ROWS, rtol=1e-14)
    np.testing.assert_allclose([r["p_target"] for r in per_row], np.exp(-EXACT_ROWS), rtol=1e-14)


def test_all_ignored_json_is_valid_with_nan_flag(tmp_path):
    labels = write_csv(tmp_path / "y.csv", [-100, -100, -100])
    result = xent("compute", SEED[0], labels, "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["loss"] is None and data["nan"] is True and data["ignored"] == 3
    assert "ignored" in result.stderr


@pytest.mark.parametrize("fmt,delimiter", [("csv", ","), ("tsv", "\t")])
def test_csv_and_tsv(fmt, delimiter):
    rows = list(csv.DictReader(io.StringIO(run("--format", fmt).stdout), delimiter=delimiter))
    assert list(rows[0]) == ["row", "target", "p_target", "log_p_target", "loss", "pred"]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], EXACT_ROWS, rtol=1e-14)
    assert [int(r["target"]) for r in rows] == [3, 0, 2]


def test_yaml_is_the_json_object():
    assert yaml.safe_load(run("--format", "yaml").stdout) == json.loads(run("--format", "json").stdout)


def test_format_from_environment_and_flag_wins():
    from_env = run(env={"XENT_FORMAT": "value"})
    assert float(from_env.stdout) == pytest.approx(EXACT)
    flag = run("--format", "json", env={"XENT_FORMAT": "value"})
    assert json.loads(flag.stdout)["schema_version"] == 1


def first_cells(table: str) -> list[str]:
    """The row column of a rendered table."""
    cells = [line.split()[0] for line in table.splitlines() if line.strip()]
    return [c for c in cells if c.isdigit() or c == "⋮"]


def test_table_precision_and_elision(tmp_path):
    rng = np.random.default_rng(0)
    logits = write_csv(tmp_path / "x.csv", rng.normal(size=(50, 3)).round(4))
    labels = write_csv(tmp_path / "y.csv", rng.integers(0, 3, size=50))
    table = xent("compute", logits, labels, "--rows", "6").stdout
    assert "44 rows not shown" in table
    assert first_cells(table) == ["0", "1", "2", "⋮", "47", "48", "49"]
    everything = xent("compute", logits, labels, "--rows", "0").stdout
    assert "not shown" not in everything
    assert first_cells(everything) == [str(i) for i in range(50)]
    assert "2.06157" in run("--precision", "5").stdout


def test_table_with_many_classes_shows_top_k(tmp_path):
    rng = np.random.default_rng(0)
    logits = write_csv(tmp_path / "x.csv", rng.normal(size=(4, 30)).round(3))
    labels = write_csv(tmp_path / "y.csv", [0, 1, 2, 3])
    table = xent("compute", logits, labels).stdout
    assert "top 3" in table and "p(29)" not in table


def test_output_file_is_written_and_stdout_stays_empty(tmp_path):
    out = tmp_path / "loss.json"
    result = run("--format", "json", "-o", out)
    assert result.stdout == ""
    assert json.loads(out.read_text())["loss"] == pytest.approx(EXACT)
    assert [p.name for p in tmp_path.iterdir()] == ["loss.json"]


def test_failed_run_leaves_existing_output_untouched(tmp_path):
    out = tmp_path / "loss.json"
    out.write_text("previous")
    result = xent("compute", tmp_path / "missing.csv", SEED[1], "-o", out)
    assert result.exit_code == 2
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.json"]


def test_table_to_output_file_has_no_colour(tmp_path):
    out = tmp_path / "table.txt"
    run("-o", out)
    text = out.read_text()
    assert "2.0616" in text and "\x1b[" not in text


@pytest.mark.parametrize("threshold,code", [(2.0, 1), (2.1, 0)])
def test_fail_above_gate(threshold, code):
    result = xent("compute", *SEED, "--format", "value", "--fail-above", str(threshold))
    assert result.exit_code == code
    assert float(result.stdout) == pytest.approx(EXACT)
    assert ("above --fail-above" in result.stderr) == (code == 1)


def test_fail_above_fails_on_nan(tmp_path):
    labels = write_csv(tmp_path / "y.csv", [-100, -100, -100])
    result = xent("compute", SEED[0], labels, "--fail-above", "100", "--format", "value")
    assert result.exit_code == 1


def test_version_and_help():
    version = xent("--version")
    assert version.exit_code == 0 and version.stdout.startswith("xent ")
    help_text = xent("compute", "--help")
    assert help_text.exit_code == 0
    for option in ("--weight", "--ignore-index", "--label-smoothing", "--format", "--fail-above"):
        assert option in help_text.stdout


def test_class_names_are_shown_literally_not_as_markup(tmp_path):
    logits = write_csv(tmp_path / "x.csv", [[1, 2], [3, 1]], header=["[red]a[/red]", "[bold]b"])
    labels = write_csv(tmp_path / "y.csv", ["[bold]b", "[red]a[/red]"])
    result = xent("compute", logits, labels, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "p([red]a[/red])" in result.stdout and "1 [bold]b" in result.stdout
    explained = xent("explain", logits, labels, env={"COLUMNS": "200"})
    assert "[bold]b ◀ target" in explained.stdout


def test_jsonl_is_one_object_a_row_as_the_json_per_row(tmp_path):
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(5000, 7)), rng.integers(0, 7, size=5000)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    result = xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = F.cross_entropy(torch.tensor(x), torch.tensor(y), reduction="none").numpy()
    assert len(lines) == 5000 and [line["row"] for line in lines] == list(range(5000))
    np.testing.assert_allclose([line["loss"] for line in lines], expected, rtol=1e-12)
    per_row = json.loads(xent("compute", tmp_path / "x.npy", tmp_path / "y.npy", "-f", "json", "--per-row").stdout)
    assert per_row["per_row"] == lines
