"""Class weights and sample weights: an inline list, a file, or class weights keyed by class.

``pd.Series(w, index=classes).to_csv()`` writes class weights as
``name,weight`` lines (alphabetical, as scikit-learn's compute_class_weight
orders them): such weights are applied by class name, never by position.
``balanced`` is scikit-learn's ``n_samples / (n_classes * count)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import XentError
from .batch import array_locator
from ..choices import DEFAULT_MAX_BYTES
from .registry import STDIN, file_errors, known_suffixes, read_source
from .text import is_number, is_positional

BALANCED = "balanced"
# Labels for --weight balanced: (class indices, None) or (soft labels, their class axis).
Labels = tuple[np.ndarray, "int | None"]


@dataclass(frozen=True)
class ClassWeights:
    """Weights by position (`values`), by class name or index (`keys`), or `balanced`."""

    source: str
    values: np.ndarray | None = None
    keys: tuple[str, ...] | None = None
    balanced: bool = False
    # a first line that may be pandas' header (`0`, as pd.Series(w).to_csv(index=False) writes): counts decide
    maybe_header: bool = False

    def header_notice(self, classes: int) -> str | None:
        """Said when the count of values reads the first line as a header."""
        if self.maybe_header and self.values is not None and len(self.values) == classes + 1:
            return f"{self.source}:1: the first line is a header (the file has one value more than the {classes} classes)"
        return None

    def resolve(
        self, class_names: Sequence[str] | None, classes: int, targets: Sequence[Labels] = (), ignore_index: int = -100
    ) -> np.ndarray:
        """One weight per class, in the logits' class order."""
        if self.balanced:
            return balanced(targets, classes, ignore_index)
        if self.keys is None:
            return self.values[1:] if self.header_notice(classes) else self.values
        if all(is_number(k) for k in self.keys) and not (class_names and set(self.keys) <= set(class_names)):
            lookup = {str(int(float(k))): k for k in self.keys}
            names = [str(k) for k in range(classes)]
        else:
            if not class_names:
                raise XentError(
                    f"the weights name classes ({', '.join(self.keys[:5])}) but the logits' classes have no names: "
                    "give them with --classes or a header row",
                    self.source,
                )
            lookup = {k: k for k in self.keys}
            names = list(class_names)
        missing = [name for name in names if name not in lookup]
        if missing:
            raise XentError(f"no weight for class {missing[0]!r}", self.source)
        extra = [k for k in self.keys if k not in {lookup[n] for n in names}]
        if extra:
            raise XentError(f"a weight for {extra[0]!r}, which is not a class (classes: {', '.join(names)})", self.source)
        position = {key: row for row, key in enumerate(self.keys)}
        return np.array([self.values[position[lookup[name]]] for name in names], dtype=np.float64)


def balanced(targets: Sequence[Labels], classes: int, ignore_index: int = -100) -> np.ndarray:
    """scikit-learn's compute_class_weight("balanced"): n_samples / (n_classes * count_c),
    over the counted labels; soft (or one-hot) labels count their mass per class."""
    counts = np.zeros(classes, dtype=np.float64)
    for target, soft_axis in targets:
        if soft_axis is not None:
            mass = np.moveaxis(np.asarray(target, dtype=np.float64), soft_axis, -1)
            counts += mass.reshape(-1, classes).sum(axis=0)
            continue
        flat = np.asarray(target).reshape(-1).astype(np.int64)
        flat = flat[(flat != ignore_index) & (flat >= 0) & (flat < classes)]
        counts += np.bincount(flat, minlength=classes)
    if (counts == 0).any():
        missing = int(np.flatnonzero(counts == 0)[0])
        raise XentError(
            f"--weight balanced: class {missing} has no rows, so its weight would be infinite "
            "(scikit-learn refuses this too)"
        )
    return counts.sum() / (classes * counts)


def read_class_weights(text: str) -> ClassWeights:
    """--weight: 'balanced', a list 1,2,0.5, or a file (numbers, or name,weight lines)."""
    if text == BALANCED:
        return ClassWeights(text, balanced=True)
    if not _is_file(text):
        return ClassWeights(text, values=_inline(text, "--weight"))
    source = read_source(text)
    table = source.table
    if table is not None:
        columns = table.data_columns()
        if table.id_columns and len(columns) == 1:
            return ClassWeights(source.name, values=table.numbers(columns).reshape(-1), keys=tuple(table.cells(table.id_columns[-1])))
        if len(columns) == 2:
            keys = table.cells(columns[0])
            if not all(is_number(k) for k in keys):
                return ClassWeights(source.name, values=table.numbers(columns[1:]).reshape(-1), keys=tuple(keys))
    maybe_header = table is not None and table.undecided and table.data_columns() == range(1)
    return ClassWeights(source.name, values=read_vector(text, "--weight"), maybe_header=maybe_header)


def _is_file(text: str) -> bool:
    if text == STDIN or Path(text).exists():
        return True
    if Path(text).suffix.lower() in (*known_suffixes(), ".gz", ".bz2", ".xz"):
        raise XentError("no such file", text)
    return False


def _inline(text: str, option: str) -> np.ndarray:
    try:
        return np.array([float(part) for part in text.split(",")], dtype=np.float64)
    except ValueError:
        raise XentError(f"{option} takes a file or a comma-separated list of numbers; {text!r} is neither") from None


def read_sample_weights(text: str) -> tuple[np.ndarray, list[str] | None]:
    """--sample-weight: one number per row, and the rows' ids where the file has an id column."""
    if _is_file(text):
        table = read_source(text).table
        if table is not None and table.id_columns:
            columns = table.data_columns()
            if len(columns) != 1:
                raise XentError(f"--sample-weight: expected one column of weights beside the ids, found {len(columns)}", text)
            return np.asarray(table.numbers(columns)).reshape(-1), table.cells(table.id_columns[-1])
    return read_vector(text, "--sample-weight"), None


def read_vector(text: str, option: str = "--weight") -> np.ndarray:
    """Numbers from a file (any input format) or an inline list ``1,2,0.5``."""
    if not _is_file(text):
        return _inline(text, option)
    source = read_source(text)
    if source.table is not None:
        return source.table.numbers(source.table.data_columns()).reshape(-1)
    if source.archive is not None:
        keys = source.archive.keys
        if len(keys) != 1:
            raise XentError(f"the archive holds {len(keys)} arrays ({', '.join(keys)}): {option} needs one", source.name)
        array = source.archive.get(keys[0])
    else:
        array = source.array
    if array.dtype.kind not in "biuf":
        raise XentError(f"{option} must be numbers, got {array.dtype}", source.name)
    return np.asarray(array, dtype=np.float64).reshape(-1)


def read_mask(path: str, rows: int | None = None) -> tuple[np.ndarray, Callable[[int], str]]:
    """--mask: 1 (count) or 0 (ignore) per label, as an attention mask; any
    input format (an archive: its `attention_mask` or its one array). A text
    file's first line is pandas' header 0,1,... when the file has one line
    more than the labels' `rows`."""
    source = read_source(path)
    if source.table is not None:
        table = source.table
        header = table.undecided and rows is not None and table.rows == rows + 1 and is_positional(table.first_row())
        table = table.with_header() if header else table.decided()
        return table.numbers(table.data_columns()), table.locate
    if source.archive is not None:
        keys = source.archive.keys
        key = "attention_mask" if "attention_mask" in keys else keys[0] if len(keys) == 1 else None
        if key is None:
            raise XentError(f"the archive holds {len(keys)} arrays ({', '.join(keys)}) and no attention_mask", source.name)
        array, name = source.archive.get(key), f"{source.name}[{key}]"
    else:
        array, name = source.array, source.name
    return array, array_locator(name, array.shape)


def read_vocabulary(path: str, classes: int) -> tuple[str, ...]:
    """--vocab: a language model's tokens, one per line (line k is token id k), as
    written: only the line ends are taken off. A model's vocabulary may be padded
    past its tokenizer's, so fewer lines than classes are fine; more are not."""
    with file_errors(path), open(path, "rb") as handle:
        data = handle.read(DEFAULT_MAX_BYTES + 1)
    if len(data) > DEFAULT_MAX_BYTES:
        raise XentError("the vocabulary is larger than any tokenizer's", path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise XentError(f"the vocabulary is not UTF-8 text (byte {error.start})", path) from None
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    tokens = [token.removesuffix("\r") for token in tokens]
    if len(tokens) > classes:
        raise XentError(f"the vocabulary has {len(tokens)} tokens but the logits have {classes} classes", path)
    return tuple(tokens)
