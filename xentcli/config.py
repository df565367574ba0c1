"""xent.yaml: find it, read it safely, check every key, resolve its paths.

Keys are the long option names with `_` (`ignore_index`, `fail_above`, ...).
Paths in it are relative to the file. The file is parsed with PyYAML's safe
loader only, so no tag can build a Python object; yaml is imported only when
a config file exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .choices import CHOICES, RANGES
from .errors import XentError

NAMES = ("xent.yaml", ".xent.yaml")
ENVIRONMENT = "XENT_CONFIG"
# key -> the types its value may have
KEYS: dict[str, tuple[type, ...]] = {
    "logits": (str, list),
    "labels": (str, list),
    "input": (str,),
    "weight": (str, list),
    "ignore_index": (int,),
    "label_smoothing": (float, int),
    "reduction": (str,),
    "classes": (str, list),
    "label_col": (str, int),
    "key": (str,),
    "labels_key": (str,),
    "id_col": (str, list),
    "max_bytes": (int,),
    "class_axis": (int,),
    "dtype": (str,),
    "delimiter": (str,),
    "header": (bool,),
    "backend": (str,),
    "device": (str,),
    "format": (str,),
    "per_row": (bool,),
    "rows": (int,),
    "precision": (int,),
    "fail_above": (float, int),
    "quiet": (bool,),
    "row": (int,),
    "top_k": (int,),
    "output": (str,),
    "save_svg": (str,),
    "save_html": (str,),
    "convention": (str,),
    "sample_weight": (str, list),
    "by_class": (bool,),
    "task": (str,),
    "pos_weight": (str, float, int, list),
    "threshold": (float, int),
    "focal_gamma": (float, int),
    "focal_alpha": (float, int),
    "shift": (bool,),
    "mask": (str,),
    "per_sequence": (bool,),
    "z_loss": (float, int),
    "softcap": (float, int),
    "temperature": (float, int),
    "logits_cols": (str,),
    "scheduler": (str,),
}
PATH_KEYS = ("logits", "labels", "weight", "sample_weight", "mask", "output", "save_svg", "save_html")
# key -> (lowest, highest) allowed, as on the command line


WRITTEN_KEYS = ("output", "save_svg", "save_html")


def find(start: Path, home: Path | None = None) -> Path | None:
    """xent.yaml or .xent.yaml in `start` or the nearest parent.

    The search stops at a repository root (a folder holding .git) and at
    $HOME, and never looks in a folder that anyone may write to (/tmp):
    a config file there could be anybody's."""
    home = (home or Path.home()).resolve()
    for folder in (start, *start.parents):
        try:
            shared = folder.stat().st_mode & 0o002
        except OSError:
            return None
        if shared or folder == Path(folder.anchor):
            return None
        for name in NAMES:
            if (folder / name).is_file():
                return folder / name
        if (folder / ".git").exists() or folder.resolve() == home:
            return None
    return None


def locate(explicit: str | None, no_config: bool, cwd: Path | None = None) -> Path | None:
    """The config file in force: --config, else $XENT_CONFIG, else discovery."""
    if no_config:
        return None
    named = explicit or os.environ.get(ENVIRONMENT)
    if named:
        path = Path(named)
        if not path.is_file():
            source = "--config" if explicit else ENVIRONMENT
            raise XentError(f"no such config file (from {source})", named)
        return path
    return find(cwd or Path.cwd())


@dataclass(frozen=True)
class Loaded:
    """A config file's checked settings, and the line each came from."""

    path: Path
    values: dict[str, Any]
    lines: dict[str, int]

    def where(self, key: str) -> str:
        return f"{self.path}:{self.lines.get(key, 1)}"


def load(path: Path) -> Loaded:
    """The checked settings of a config file, with its paths made relative to the cwd."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise XentError(f"cannot read the config file ({error})", str(path)) from None
    try:
        tree = yaml.compose(text, Loader=yaml.SafeLoader)
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise XentError(f"invalid YAML: {problem}", where) from None
    if values is None:
        return Loaded(path, {}, {})
    if not isinstance(values, Mapping) or not isinstance(tree, yaml.MappingNode):
        raise XentError("the config file must be a mapping of option names to values", f"{path}:1")
    lines: dict[str, int] = {}
    for node, _ in tree.value:
        line = node.start_mark.line + 1
        if node.value in lines:
            raise XentError(f"{node.value!r} is set twice (first on line {lines[node.value]})", f"{path}:{line}")
        lines[node.value] = line
    checked = {key: _check(path, lines.get(str(key), 1), key, value) for key, value in values.items()}
    return Loaded(path, checked, {str(k): v for k, v in lines.items()})


def _check(path: Path, line: int, key: Any, value: Any) -> Any:
    where = f"{path}:{line}"
    if key not in KEYS:
        known = ", ".join(sorted(KEYS))
        hint = " (keys use _, not -)" if isinstance(key, str) and key.replace("-", "_") in KEYS else ""
        raise XentError(f"unknown key {key!r}{hint}; known keys: {known}", where)
    types = KEYS[key]
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        wanted = " or ".join(_type_name(t) for t in types if not (t is int and float in types))
        raise XentError(f"{key}: expected {wanted}, got {_type_name(type(value))} {value!r}", where)
    if key in CHOICES and value not in CHOICES[key]:
        raise XentError(f"{key}: {value!r} is not one of {', '.join(CHOICES[key])}", where)
    low, high = RANGES.get(key, (None, None))
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise XentError(f"{key}: {value!r} must be {bounds}", where)
    if isinstance(value, list):
        item = str if key in ("classes", "id_col", "logits", "labels") else (int, float)
        if not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
            raise XentError(f"{key}: every item must be a {'string' if item is str else 'number'}", where)
        if key in PATH_KEYS and item is str:
            return ",".join(_relative(path, v) for v in value)
        return ",".join(str(v) for v in value)
    if key in WRITTEN_KEYS:
        return _inside(path, key, value, where)
    if key in PATH_KEYS and isinstance(value, str) and value != "-":
        if key in ("weight", "sample_weight"):
            resolved = path.parent / value
            return str(resolved) if resolved.exists() else value  # else an inline list, or 'balanced'
        return ",".join(_relative(path, part) for part in value.split(",") if part)
    return value


def _relative(path: Path, value: str) -> str:
    return value if value == "-" else str(path.parent / value)


def _inside(path: Path, key: str, value: str, where: str) -> str:
    """A path xent will write, from a config file: it must stay in the file's folder."""
    folder = os.path.realpath(path.parent)
    target = os.path.realpath(path.parent / value)
    if os.path.commonpath([folder, target]) != folder:
        raise XentError(
            f"{key}: {value!r} is outside the config file's folder; "
            "a config file may only write inside its own folder (give -o/--save-* on the command line instead)",
            where,
        )
    return str(path.parent / value)


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "a list"}.get(
        kind, kind.__name__
    )
