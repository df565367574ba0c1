"""Every command and every option is in the README, and its examples run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from conftest import xent
from xentcli.cli import app

README = (Path(__file__).parents[2] / "README.md").read_text()
COMMANDS = typer.main.get_command(app).commands


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_option_is_documented(name):
    assert f"xent {name}" in README
    for parameter in COMMANDS[name].params:
        for option in getattr(parameter, "opts", []):
            if option.startswith("--"):
                assert option in README, f"{name} {option} is not in the README"


def test_readme_sample_data_commands_run():
    commands = set(re.findall(r"^\$? ?xent ((?:compute|explain) sample_data/\S+(?: [^|#\n]*)?)$", README, re.M))
    commands |= set(re.findall(r"`xent ((?:compute|explain) sample_data/[^`]*)`", README))
    assert len(commands) >= 4
    for command in sorted(commands):
        result = xent(*command.split())
        assert result.exit_code == 0, (command, result.stderr)


def test_every_package_is_installed():
    """`pip install .` installs only the packages pyproject.toml lists: a new subpackage must be there."""
    import tomllib

    root = Path(__file__).parents[2]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(path.relative_to(root).parts[:-1]) for path in (root / "xentcli").rglob("__init__.py")}
    assert found <= listed, f"not installed by pip install .: {sorted(found - listed)}"


def test_every_format_has_a_writer():
    from xentcli.render import compute as render
    from xentcli.choices import FORMATS

    from xentcli.render import explain as render_explain

    assert set(render.WRITERS) | {"table"} == set(FORMATS["compute"])
    assert set(render_explain.WRITERS) | {"table"} == set(FORMATS["explain"])
    assert set(render.COMPARE_WRITERS) | {"table"} == set(FORMATS["compare"])
