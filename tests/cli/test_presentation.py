"""What people read: words, ASCII numbers, titles, the table's fit, escaped data, the JSON's trim."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import typer

from conftest import SAMPLES, SEED_LOGITS, SEED_TARGETS, write_csv, xent, xent_json
from xentcli.cli import app
from xentcli.render.display import abbreviate, fixed, printable, shortest_distinct, signed

SEED = (SAMPLES / "logits.csv", SAMPLES / "labels.csv")
IRIS = ["setosa", "versicolor", "virginica"]
EVIL = "a\x1b]0;PWNED\x1b\\"  # an OSC sequence that retitles the terminal
EVIL_SHOWN = "a\\x1b]0;PWNED\\x1b\\"


def softmax(x: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(np.asarray(x, dtype=np.float64)), dim=1).numpy()


# --- words ---------------------------------------------------------------------------------------


def test_no_seed_notebook_in_help_or_notices():
    texts = [xent("--help").stdout]
    texts += [xent(name, "--help", env={"COLUMNS": "200"}).stdout for name in typer.main.get_command(app).commands]
    notice = xent("compute", "--no-config", "--format", "value").stderr
    assert "bundled 3×5 example" in notice
    for text in texts + [notice]:
        assert "seed notebook" not in text.lower() and "notebook" not in text.lower()


# --- numbers in ASCII ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,precision,shown",
    [(-1e-9, 4, "0.0000"), (-0.0, 2, "0.00"), (-0.00004, 4, "0.0000"), (-0.00006, 4, "-0.0001"),
     (-1.5, 1, "-1.5"), (2.25, 1, "2.2"), (float("-inf"), 4, "-inf"), (float("inf"), 4, "inf"),
     (float("nan"), 4, "nan")],
)
def test_fixed_is_ascii_and_never_negative_zero(value, precision, shown):
    assert fixed(value, precision) == shown


def test_signed_has_a_plus_only_when_not_zero():
    assert (signed(0.5, 2), signed(-0.5, 2), signed(1e-9, 4), signed(-1e-9, 4)) == ("+0.50", "-0.50", "0.0000", "0.0000")


EXPLAIN_CASES = [
    [],
    ["--weight", "1,2,0.5,1,1"],
    ["--label-smoothing", "0.1", "--weight", "1,2,0.5,1,1"],
    ["--convention", "keras", "--weight", "1,2,0.5,1,1"],
    ["--ignore-index", "2"],
]


@pytest.mark.parametrize("options", EXPLAIN_CASES, ids=lambda o: " ".join(o) or "plain")
@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_explain_writes_ascii_minus_signs(options, fmt):
    result = xent("explain", *SEED, "--row", "2", "--format", fmt, *options, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "\u2212" not in result.stdout
    # Row 2's log p of class 0, derived from the logits: shown with an ASCII minus.
    log_p = np.log(softmax(SEED_LOGITS))[2, 0]
    assert f"{log_p:.4f}" in result.stdout and log_p < 0


def test_explain_soft_labels_and_probabilities_write_ascii_minus_signs(tmp_path):
    soft = xent("explain", SEED[0], SAMPLES / "soft_labels.csv", "--label-smoothing", "0.1", env={"COLUMNS": "200"})
    probabilities = write_csv(tmp_path / "p.csv", softmax(SEED_LOGITS))
    probs = xent("explain", probabilities, SEED[1], "--input", "probs", env={"COLUMNS": "200"})
    for result in (soft, probs):
        assert result.exit_code == 0, result.stderr
        assert "\u2212" not in result.stdout and "-" in result.stdout


@pytest.fixture
def certain(tmp_path):
    """A row so sure of its target that log p(t) = -2e-9: it rounds to zero."""
    logits = write_csv(tmp_path / "x.csv", [[20.0, 0.0], [0.0, 1.0]])
    labels = write_csv(tmp_path / "y.csv", [0, 1])
    log_p = float(F.log_softmax(torch.tensor([20.0, 0.0], dtype=torch.float64), 0)[0])
    assert -1e-8 < log_p < 0
    return logits, labels


def test_a_value_that_rounds_to_zero_is_never_negative_zero(certain):
    table = xent("compute", *certain, env={"COLUMNS": "200"}).stdout
    explained = xent("explain", *certain, "--row", "0", env={"COLUMNS": "200"}).stdout
    markdown = xent("explain", *certain, "--row", "0", "-f", "markdown").stdout
    for text in (table, explained, markdown):
        assert "-0.0000" not in text and "\u22120.0000" not in text
    row = next(line for line in table.splitlines() if line.lstrip().startswith("0 "))
    assert row.split()[-4:-2] == ["0.0000", "0.0000"]  # log p(t) and loss
    assert "log p_target = 0.0000" in explained


# --- SVG and HTML titles -------------------------------------------------------------------------


def test_pictures_are_titled_with_the_command_and_file(tmp_path):
    svg, html = tmp_path / "view.svg", tmp_path / "view.html"
    result = xent("compute", *SEED, "-f", "value", "--save-svg", svg, "--save-html", html)
    assert result.exit_code == 0, result.stderr
    title = f"xent compute: {SEED[0]}"
    assert f"<title>{title}</title>" in html.read_text()
    text = svg.read_text().replace("&#160;", " ")
    assert title in text and ">Rich<" not in text


def test_picture_titles_are_escaped(tmp_path):
    logits = write_csv(tmp_path / "a<b>\x1b[31m.csv", SEED_LOGITS)
    svg, html = tmp_path / "view.svg", tmp_path / "view.html"
    result = xent("compute", logits, SEED[1], "-f", "value", "--save-svg", svg, "--save-html", html)
    assert result.exit_code == 0, result.stderr
    page = html.read_text()
    assert "\x1b" not in page and "\x1b" not in svg.read_text()
    assert re.search(r"<title>xent compute: .*a&lt;b&gt;\\x1b\[31m\.csv</title>", page)


# --- JSON ----------------------------------------------------------------------------------------


def test_by_class_carries_the_class_names():
    data = xent_json(SAMPLES / "animals.csv", "--label-col", "label", "--by-class")
    names = data["class_names"]
    assert names == ["cat", "dog", "bird"]
    assert [(c["class"], c["name"]) for c in data["metrics"]["by_class"]] == list(enumerate(names))
    unnamed = xent_json(*SEED, "--by-class")["metrics"]["by_class"]
    assert [(c["class"], c["name"]) for c in unnamed] == [(c, None) for c in range(5)]


def test_json_keeps_only_the_bins_that_hold_rows():
    data = xent_json(*SEED)
    metrics = data["metrics"]
    losses = F.cross_entropy(torch.from_numpy(SEED_LOGITS), torch.from_numpy(SEED_TARGETS), reduction="none").numpy()
    histogram = metrics["loss_histogram"]
    assert histogram and all(b["rows"] > 0 for b in histogram)
    for b in histogram:  # each bin's count, recounted from torch's losses
        high = np.inf if b["high"] is None else b["high"]
        assert b["rows"] == int(((losses >= b["low"]) & (losses < high)).sum())
    assert sum(b["rows"] for b in histogram) == len(losses)
    assert all(b["rows"] > 0 for b in metrics["reliability"])
    for key in ("top_k", "top_k_accuracy", "mean_entropy", "ece", "reliability", "loss_histogram", "by_class"):
        assert key in metrics  # keys stay, empty bins go


# --- --top-k -------------------------------------------------------------------------------------


@pytest.mark.parametrize("k,warns", [(4, False), (5, True), (9, True)])
def test_top_k_at_least_the_classes_warns(k, warns):
    result = xent("compute", *SEED, "--top-k", str(k), "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert ("--top-k" in result.stderr) == warns
    assert any("--top-k" in w for w in data["warnings"]) == warns
    assert data["metrics"]["top_k_accuracy"] == (1.0 if warns else data["metrics"]["top_k_accuracy"])
    quiet = xent("compute", *SEED, "--top-k", str(k), "--format", "value", "--quiet")
    assert quiet.stderr == ""


# --- the table's fit -----------------------------------------------------------------------------


@pytest.fixture
def iris(tmp_path):
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(6, 3)).round(3)
    species = [IRIS[i % 3] for i in range(6)]
    path = tmp_path / "iris.csv"
    path.write_text(",".join(IRIS + ["species"]) + "\n"
                    + "".join(",".join(map(str, row)) + f",{name}\n" for row, name in zip(logits, species)))
    return path, logits, species


def class_headers(header: str) -> list[str]:
    """The classes named by the p(...) headers (not p(t) or log p(t))."""
    return re.findall(r"p\(((?!t\))[^)]*)\)", header)


def data_lines(table: str, rows: int) -> list[str]:
    return [line for line in table.splitlines() if re.match(r"\s*\d+ ", line)][:rows]


@pytest.mark.parametrize("width", [80, 60])
def test_iris_shows_every_class_on_one_line_per_row(iris, width):
    path, logits, species = iris
    result = xent("compute", path, "--label-col", "species", env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= width for line in lines)
    header = lines[0]
    assert "top 3" not in header
    shown = class_headers(header)
    assert len(shown) == 3 and len(set(shown)) == 3
    for short, full in zip(shown, IRIS):  # each header names its class, cut or not
        assert full == short or (short.endswith("…") and full.startswith(short[:-1]))
    rows = data_lines(result.stdout, 6)
    assert [int(line.split()[0]) for line in rows] == list(range(6))
    p = softmax(logits)
    for line, expected in zip(rows, p):
        cells = line.split()
        assert cells[2:5] == [f"{v:.4f}" for v in expected]
    if width == 80:
        assert shown == IRIS  # room enough for the full names


def test_iris_through_a_rich_console_of_each_width(iris):
    """The renderer itself, drawn by rich at 80 and 60 columns."""
    from rich.console import Console

    from xentcli import load_batch
    from xentcli import cross_entropy
    from xentcli.engine import softmax as xent_softmax
    from xentcli.engine.metrics import MetricOptions
    from xentcli.render.compute import Report, table

    path, logits, _ = iris
    batch = load_batch(str(path), None, label_col="species")
    result = cross_entropy(batch.logits, batch.target, metrics=MetricOptions())
    for width in (80, 60):
        console = Console(width=width, file=None, record=True, color_system=None)
        with console.capture() as capture:
            console.print(table(Report(result, batch, {}), range(6), result, xent_softmax(batch.logits), 0, 4, width))
        lines = capture.get().splitlines()
        assert len(data_lines("\n".join(lines), 6)) == 6
        assert len(class_headers(lines[0])) == 3
        assert all(len(line) <= width for line in lines[:8])


@pytest.mark.parametrize("named", [False, True])
def test_ten_classes_at_80_columns_show_every_class(tmp_path, named):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 10)).round(3)
    names = "airplane automobile bird cat deer dog frog horse ship truck".split()
    if named:
        path = write_csv(tmp_path / "x.csv", [list(row) + [names[i]] for i, row in enumerate(logits)],
                         header=names + ["label"])
        result = xent("compute", path, "--label-col", "label", env={"COLUMNS": "80"})
    else:
        labels = write_csv(tmp_path / "y.csv", range(5))
        result = xent("compute", write_csv(tmp_path / "x.csv", logits), labels, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert class_headers(lines[0]) == [str(c) for c in range(10)] and "top 3" not in lines[0]
    rows = data_lines(result.stdout, 5)
    assert [int(line.split()[0]) for line in rows] == list(range(5))
    if named:  # by index, with the names in a line under the table
        assert "classes: 0 airplane · 1 automobile" in result.stdout


def test_many_classes_at_60_columns_never_wrap_a_row(tmp_path):
    rng = np.random.default_rng(2)
    logits = write_csv(tmp_path / "x.csv", rng.normal(size=(4, 30)).round(3))
    labels = write_csv(tmp_path / "y.csv", [0, 1, 2, 3])
    result = xent("compute", logits, labels, env={"COLUMNS": "60"})
    lines = result.stdout.splitlines()
    assert "top 3" in lines[0] and all(len(line) <= 60 for line in lines[:6])
    assert [int(line.split()[0]) for line in data_lines(result.stdout, 4)] == [0, 1, 2, 3]
    assert len([line for line in lines[:7] if line.strip()]) == 6  # header, rule, 4 rows


def test_abbreviations_tell_the_classes_apart():
    assert shortest_distinct(IRIS) == 3 and [abbreviate(n, 3) for n in IRIS] == ["se…", "ve…", "vi…"]
    assert [abbreviate(n, 4) for n in IRIS] == ["set…", "ver…", "vir…"]
    assert shortest_distinct(["cat", "cat"]) == 3  # duplicates: never cut
    assert abbreviate("dog", 4) == "dog"


# --- escaped data --------------------------------------------------------------------------------


def test_printable_escapes_controls_and_leaves_the_rest():
    assert printable(EVIL) == EVIL_SHOWN
    assert printable("tab\there\n") == "tab\\there\\n"
    assert printable("abc\u202edef") == "abc\\u202edef"
    assert printable("\x9b31m") == "\\x9b31m"
    assert printable("café ✓ 猫 a b") == "café ✓ 猫 a b"


@pytest.fixture
def evil(tmp_path):
    """Class names that retitle the terminal or reverse the text, in a file whose name clears the screen."""
    names = [EVIL, "b", "c\u202egnp.exe"]
    rows = [[1, 2, 0.5, names[0]], [3, 1, 0, names[1]], [0, 0, 4, names[2]]]
    return write_csv(tmp_path / "ev\x1bcil.csv", rows, header=names + ["label"]), "--label-col", "label"


def assert_escaped(text: str) -> None:
    assert "\x1b" not in text and "\u202e" not in text, repr(text)
    assert EVIL_SHOWN in text or "a\\x1b]0;" in text


def test_the_table_and_summary_show_data_escaped(evil, tmp_path):
    for width in ("200", "60"):
        result = xent("compute", *evil, "--by-class", env={"COLUMNS": width})
        assert result.exit_code == 0, result.stderr
        assert_escaped(result.stdout)
    assert "c\\u202egnp.exe" in xent("compute", *evil, env={"COLUMNS": "200"}).stdout


def test_explain_and_markdown_show_data_and_file_names_escaped(evil):
    for fmt in ("table", "markdown"):
        result = xent("explain", *evil, "--row", "1", "--format", fmt, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.stderr
        assert_escaped(result.stdout)
        assert "ev\\x1bcil.csv" in result.stdout


def test_pictures_show_data_escaped(evil, tmp_path):
    svg, html = tmp_path / "v.svg", tmp_path / "v.html"
    result = xent("compute", *evil, "-f", "value", "--by-class", "--save-svg", svg, "--save-html", html)
    assert result.exit_code == 0, result.stderr
    for text in (svg.read_text(), html.read_text()):
        assert "\x1b" not in text and "\u202e" not in text
    assert "a\\x1b]0;PWNED" in html.read_text()


def test_many_files_and_compare_show_file_names_escaped(tmp_path):
    names = []
    for k in range(2):
        names.append(write_csv(tmp_path / f"part{k}\x1bc.csv", SEED_LOGITS))
        write_csv(tmp_path / f"part{k}\x1bc.labels.csv", SEED_TARGETS)
    many = xent("compute", ",".join(map(str, names)),
                ",".join(str(n).replace(".csv", ".labels.csv") for n in names), env={"COLUMNS": "300"})
    assert many.exit_code == 0, many.stderr
    assert "\x1b" not in many.stdout and "part0\\x1bc.csv" in many.stdout
    compared = xent("compare", names[0], names[1], SEED[1], env={"COLUMNS": "300"})
    assert compared.exit_code == 0, compared.stderr
    assert "\x1b" not in compared.stdout and "part1\\x1bc.csv" in compared.stdout
