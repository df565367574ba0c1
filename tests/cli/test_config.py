"""xent.yaml: discovery, precedence, relative paths, and every error it can hold."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import SAMPLES, assert_user_error, xent

SEED_LOSS = 2.0616


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with the sample data under data/, as the current folder."""
    shutil.copytree(SAMPLES, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(path, text: str):
    path.write_text(text)
    return path


def value(*args, **kwargs) -> float:
    result = xent("compute", *args, "--format", "value", **kwargs)
    assert result.exit_code == 0, result.stderr
    return float(result.stdout)


def test_config_names_the_inputs(project):
    write_config(project / "xent.yaml", "logits: data/logits.csv\nlabels: data/labels.csv\n")
    result = xent("compute", "--format", "json")
    assert result.exit_code == 0
    assert result.stderr == f"xent: using the settings in {project / 'xent.yaml'} (logits, labels)\n"
    assert xent("compute", "-q").stderr == ""
    data = json.loads(result.stdout)
    assert round(data["loss"], 4) == SEED_LOSS
    assert data["inputs"]["logits"] == str(project / "data" / "logits.csv")
    assert data["options"]["config"] == str(project / "xent.yaml")


def test_found_in_a_parent_folder_with_paths_relative_to_it(project, monkeypatch):
    write_config(project / ".xent.yaml", "logits: data/logits.csv\nlabels: data/labels.csv\nreduction: sum\n")
    (project / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(project / "deep" / "er")
    assert value() == pytest.approx(6.1847, abs=1e-4)


def test_discovery_stops_at_the_git_root(project, monkeypatch):
    write_config(project / "xent.yaml", "reduction: sum\n")
    (project / "repo" / ".git").mkdir(parents=True)
    (project / "repo" / "src").mkdir()
    monkeypatch.chdir(project / "repo" / "src")
    assert value("-q") == pytest.approx(SEED_LOSS, abs=1e-4)  # the mean: the config above .git is not read


def test_explicit_config_and_environment(project, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("conf")
    write_config(elsewhere / "mine.yaml", "reduction: sum\n")
    write_config(project / "xent.yaml", "reduction: none\n")
    assert value("data/logits.csv", "data/labels.csv", "--config", str(elsewhere / "mine.yaml")) == pytest.approx(6.1847, abs=1e-4)
    monkeypatch.setenv("XENT_CONFIG", str(elsewhere / "mine.yaml"))
    assert value("data/logits.csv", "data/labels.csv") == pytest.approx(6.1847, abs=1e-4)
    assert value("data/logits.csv", "data/labels.csv", "--no-config") == pytest.approx(SEED_LOSS, abs=1e-4)


def test_precedence_command_line_over_environment_over_config(project):
    write_config(project / "xent.yaml", "logits: data/logits.csv\nlabels: data/labels.csv\nformat: json\nreduction: sum\n")
    assert json.loads(xent("compute").stdout)["reduction"] == "sum"
    from_env = xent("compute", env={"XENT_FORMAT": "value"})
    assert float(from_env.stdout) == pytest.approx(6.1847, abs=1e-4)
    flag = xent("compute", "--format", "csv", "--reduction", "mean", env={"XENT_FORMAT": "value"})
    assert flag.stdout.startswith("row,target,")


def test_every_kind_of_value(project):
    write_config(
        project / "xent.yaml",
        "logits: data/animals.csv\nlabel_col: 3\nweight: [1, 2, 0.5]\nlabel_smoothing: 0.1\n"
        "classes: [cat, dog, bird]\nprecision: 6\nfail_above: 0.01\n",
    )
    result = xent("compute")
    assert result.exit_code == 1  # fail_above from the config
    assert "above --fail-above 0.01" in result.stderr
    data = json.loads(xent("compute", "--format", "json", "--fail-above", "10").stdout)
    assert data["options"]["weight"] == "1,2,0.5" and data["options"]["label_smoothing"] == 0.1


def test_weight_file_relative_to_the_config(project, monkeypatch):
    (project / "data" / "w.csv").write_text("1\n1\n1\n2\n1\n")
    write_config(project / "xent.yaml", "logits: data/logits.csv\nlabels: data/labels.csv\nweight: data/w.csv\n")
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")
    assert value() == pytest.approx(value("-w", "1,1,1,2,1"))


def test_explain_reads_the_row_from_the_config(project):
    write_config(project / "xent.yaml", "logits: data/logits.csv\nlabels: data/labels.csv\nrow: 2\nformat: csv\n")
    result = xent("explain", "--format", "json")
    assert json.loads(result.stdout)["row"] == 2
    assert xent("explain").stdout.startswith("row 2 of 3")  # format: csv is compute's, not explain's


@pytest.mark.parametrize(
    "text,line,message",
    [
        ("reduction: sum\nignore-index: 3\n", 2, "unknown key 'ignore-index' (keys use _, not -)"),
        ("colour: red\n", 1, "unknown key 'colour'"),
        ("label_smoothing: lots\n", 1, "label_smoothing: expected a number, got a string 'lots'"),
        ("ignore_index: true\n", 1, "ignore_index: expected an integer"),
        ("reduction: median\n", 1, "reduction: 'median' is not one of mean, sum, none"),
        ("weight: [1, two]\n", 1, "weight: every item must be a number"),
        ("logits: a.csv\n  labels: [\n", 2, "invalid YAML"),
        ("- just\n- a list\n", 1, "must be a mapping"),
    ],
)
def test_config_errors_name_file_line_and_key(project, text, line, message):
    write_config(project / "xent.yaml", text)
    assert_user_error(xent("compute"), f"{project / 'xent.yaml'}:{line}:", message)


def test_python_tags_are_refused_and_never_run(project):
    write_config(project / "xent.yaml", f"logits: !!python/object/apply:os.system ['touch {project / 'pwned'}']\n")
    assert_user_error(xent("compute"), f"{project / 'xent.yaml'}:1:", "invalid YAML")
    assert not (project / "pwned").exists()


def test_missing_explicit_config(project):
    assert_user_error(xent("compute", "--config", "nope.yaml"), "nope.yaml:", "no such config file")


def test_empty_config_is_fine(project):
    write_config(project / "xent.yaml", "# nothing yet\n")
    assert value("data/logits.csv", "data/labels.csv") == pytest.approx(SEED_LOSS, abs=1e-4)


def test_no_config_means_yaml_is_not_imported(project):
    import subprocess
    import sys

    code = (
        "import sys\nfrom xentcli.cli import app\n"
        "try:\n    app(['compute', 'data/logits.csv', 'data/labels.csv', '-f', 'value'])\n"
        "except SystemExit as e:\n    assert e.code == 0\nassert 'yaml' not in sys.modules"
    )
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project, timeout=60)
    assert process.returncode == 0, process.stderr
