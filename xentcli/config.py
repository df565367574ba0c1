"""xent.yaml: find it, read it safely, check every key, resolve its paths.

Keys are the long option names with `_` (`ignore_index`, `fail_above`, ...).
Paths in it are relative to the file. The file is parsed with PyYAML's safe
loader only, so no tag can build a Python object; yaml is imported only when
a config file exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import XentError

NAMES = ("xent.yaml", ".xent.yaml")
ENVIRONMENT = "XENT_CONFIG"
CHOICES = {
    "input": ("logits", "probs", "log-probs"),
    "reduction": ("mean", "sum", "none"),
    "backend": ("auto", "numpy", "torch"),
    "device": ("cpu", "cuda", "auto"),
    "dtype": ("float32", "float64"),
    "convention": ("torch", "keras", "sklearn", "optax"),
    "format": ("table", "json", "csv", "tsv", "yaml", "value", "markdown"),
}
# key -> the types its value may have
KEYS: dict[str, tuple[type, ...]] = {
    "logits": (str,),
    "labels": (str,),
    "input": (str,),
    "weight": (str, list),
    "ignore_index": (int,),
    "label_smoothing": (float, int),
    "reduction": (str,),
    "classes": (str, list),
    "label_col": (str, int),
    "key": (str,),
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
}
PATH_KEYS = ("logits", "labels", "weight", "sample_weight", "output", "save_svg", "save_html")
# key -> (lowest, highest) allowed, as on the command line
RANGES = {"precision": (0, 17), "rows": (0, None), "top_k": (1, None), "label_smoothing": (0, 1)}


def find(start: Path) -> Path | None:
    """xent.yaml or .xent.yaml in `start` or the nearest parent, stopping at a git root."""
    for folder in (start, *start.parents):
        for name in NAMES:
            if (folder / name).is_file():
                return folder / name
        if (folder / ".git").exists():
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


def load(path: Path) -> dict[str, Any]:
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
        return {}
    if not isinstance(values, Mapping) or not isinstance(tree, yaml.MappingNode):
        raise XentError("the config file must be a mapping of option names to values", f"{path}:1")
    lines = {node.value: node.start_mark.line + 1 for node, _ in tree.value if isinstance(node, yaml.ScalarNode)}
    return {key: _check(path, lines.get(str(key), 1), key, value) for key, value in values.items()}


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
        item = str if key == "classes" else (int, float)
        if not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
            raise XentError(f"{key}: every item must be a {'string' if key == 'classes' else 'number'}", where)
        return ",".join(str(v) for v in value)
    if key in PATH_KEYS and isinstance(value, str) and value != "-":
        resolved = path.parent / value
        if key not in ("weight", "sample_weight") or resolved.exists():
            return str(resolved)
    return value


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "a list"}.get(
        kind, kind.__name__
    )
