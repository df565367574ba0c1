"""A config file never acts behind the user's back."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import SAMPLES, SEED_LOGITS, SEED_TARGETS, xent

SEED_MEAN = float(F.cross_entropy(torch.from_numpy(SEED_LOGITS), torch.from_numpy(SEED_TARGETS)))


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copytree(SAMPLES, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_found_config_is_announced_and_its_settings_shown(project, monkeypatch):
    (project / "xent.yaml").write_text("label_smoothing: 0.01\n")
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")
    result = xent("compute", project / "data/logits.csv", project / "data/labels.csv", "--format", "json")
    assert result.exit_code == 0
    expected = float(F.cross_entropy(torch.from_numpy(SEED_LOGITS), torch.from_numpy(SEED_TARGETS), label_smoothing=0.01))
    data = json.loads(result.stdout)
    assert data["loss"] == pytest.approx(expected, rel=1e-12)
    assert result.stderr == f"xent: using the settings in {project / 'xent.yaml'} (label_smoothing)\n"
    assert data["options"]["from"]["label_smoothing"] == f"{project / 'xent.yaml'}:1"
    assert data["options"]["from"]["reduction"] == "default"
    flag = json.loads(xent("compute", project / "data/logits.csv", project / "data/labels.csv", "--label-smoothing", "0", "--format", "json").stdout)
    assert flag["options"]["from"]["label_smoothing"] == "command line"
    table = xent("compute", project / "data/logits.csv", project / "data/labels.csv")
    shown = "".join(table.stdout.split())  # a long path wraps in its column
    assert "settingslabel_smoothing0.01(../xent.yaml:1)" in shown
    assert xent("compute", project / "data/logits.csv", project / "data/labels.csv", "-q").stderr == ""


def test_discovery_never_climbs_above_home(project, monkeypatch):
    (project / "xent.yaml").write_text("reduction: sum\n")
    (project / "home" / "work").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(project / "home"))
    monkeypatch.chdir(project / "home" / "work")
    result = xent("compute", "-q", "--format", "value")
    assert float(result.stdout) == pytest.approx(SEED_MEAN, rel=1e-12)


def test_no_config_is_read_from_a_folder_anyone_may_write(project, monkeypatch):
    shared = project / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "xent.yaml").write_text("reduction: sum\n")
    (shared / "me").mkdir()
    monkeypatch.chdir(shared / "me")
    result = xent("compute", "-q", "--format", "value")
    assert float(result.stdout) == pytest.approx(SEED_MEAN, rel=1e-12)


@pytest.mark.parametrize("key", ["output", "save_html", "save_svg"])
@pytest.mark.parametrize("where", ["../victim.txt", "/tmp/xent-victim.txt"])
def test_a_config_cannot_write_outside_its_folder(project, key, where):
    (project / "conf").mkdir()
    (project / "conf" / "xent.yaml").write_text(f"{key}: {where}\n")
    result = xent("compute", "--config", project / "conf" / "xent.yaml", "-q")
    assert result.exit_code == 2
    assert "outside the config file's folder" in result.stderr and "xent.yaml:1" in result.stderr
    assert not (project / "victim.txt").exists()


def test_a_config_may_write_inside_its_folder(project):
    (project / "xent.yaml").write_text("output: out/loss.json\nformat: json\n")
    (project / "out").mkdir()
    assert xent("compute", "-q").exit_code == 0
    assert json.loads((project / "out" / "loss.json").read_text())["rows"] == 3


def test_duplicate_keys_are_an_error(project):
    (project / "xent.yaml").write_text("reduction: sum\nlabel_smoothing: 0.1\nreduction: mean\n")
    result = xent("compute")
    assert result.exit_code == 2
    assert "xent.yaml:3: 'reduction' is set twice (first on line 1)" in result.stderr


def test_every_path_of_a_list_is_relative_to_the_config(project, monkeypatch):
    rng = np.random.default_rng(0)
    logits, target = rng.normal(size=(8, 3)), rng.integers(0, 3, size=8)
    (project / "sub").mkdir()
    for k in range(2):
        np.save(project / "sub" / f"a{k}.npy", logits[4 * k : 4 * k + 4])
        np.save(project / "sub" / f"y{k}.npy", target[4 * k : 4 * k + 4])
    np.save(project / "a1.npy", np.zeros((4, 3)))  # the trap: ./a1.npy beside the cwd
    (project / "sub" / "xent.yaml").write_text("logits: a0.npy,a1.npy\nlabels: [y0.npy, y1.npy]\n")
    result = xent("compute", "--config", project / "sub" / "xent.yaml", "-q", "--format", "value")
    assert result.exit_code == 0, result.stderr
    expected = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target)))
    assert float(result.stdout) == pytest.approx(expected, rel=1e-12)
