"""Which files a LOGITS or LABELS argument names, in natural order, and how they pair up.

Globs are sorted naturally (``part2`` before ``part10``). Many logits files
pair with many labels files by the part of their names that differs
(``logits_1.npy`` with ``labels_01.npy``: numbers compare by value), never
by position alone; a pairing that is not one-to-one is refused.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import XentError
from .registry import STDIN, is_url

NUMBER = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """Text with its digit runs compared as numbers: part2 < part10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in NUMBER.split(text))


def expand_paths(spec: str) -> list[str]:
    """The files an argument names: a path, a glob (natural order), or a,b,c (as given)."""
    if spec == STDIN or Path(spec).exists():
        return [spec]
    if is_url(spec):
        if any(char in spec.split("?")[0] for char in "*?["):
            from . import remote  # fsspec, only for URLs

            return sorted(remote.expand(spec), key=natural_key)
        return [part for part in spec.split(",") if part] if "," in spec else [spec]
    if any(char in spec for char in "*?["):
        try:
            found = glob.glob(spec)
        except OSError as error:
            raise XentError(f"cannot list the files: {error.strerror or error}", spec) from None
        if not found:
            folder = os.path.dirname(spec) or "."
            if os.path.isdir(folder) and not os.access(folder, os.R_OK | os.X_OK):
                raise XentError("cannot list the files: permission denied", folder)
            raise XentError("no file matches this pattern", spec)
        return sorted(found, key=natural_key)
    if "," in spec:
        return [part for part in spec.split(",") if part]
    return [spec]


def _variable_parts(paths: Sequence[str]) -> list[tuple]:
    """Each path without its suffixes and without what all the paths share at the start and the end."""
    stems = [p[: len(p) - len("".join(Path(p).suffixes))] for p in paths]
    prefix = os.path.commonprefix(stems)
    suffix = os.path.commonprefix([s[::-1] for s in stems])[::-1]
    # Keep whole numbers whole: never cut a digit run in two.
    while prefix and prefix[-1].isdigit():
        prefix = prefix[:-1]
    while suffix and suffix[0].isdigit():
        suffix = suffix[1:]
    parts = [s[len(prefix) : len(s) - len(suffix) if suffix else len(s)] for s in stems]
    return [natural_key(part) for part in parts]


def is_pattern(spec: str) -> bool:
    return spec != STDIN and not Path(spec).exists() and any(char in spec for char in "*?[")


def pair_paths(logits: Sequence[str], labels: Sequence[str], by_name: bool) -> list[tuple[str, str]]:
    """Logits files with their labels files: matched by the part of the names that
    differs when `by_name` (globs), else in the order given (comma lists)."""
    if len(logits) != len(labels):
        raise XentError(
            f"{len(logits)} logits files but {len(labels)} labels files: they pair one to one"
        )
    if len(logits) == 1 or not by_name:
        return list(zip(logits, labels))
    logit_keys, label_keys = _variable_parts(logits), _variable_parts(labels)
    if len(set(logit_keys)) != len(logits) or len(set(label_keys)) != len(labels):
        raise XentError("the files' names do not tell them apart, so they cannot be paired by name")
    by_key = dict(zip(label_keys, labels))
    pairs = []
    for key, path in zip(logit_keys, logits):
        if key not in by_key:
            raise XentError(
                "no labels file matches this logits file by name "
                "(pairs are matched by the part of the names that differs)",
                path,
            )
        pairs.append((path, by_key[key]))
    return pairs
