"""Two inputs -> one Batch: logits and labels matched by name and by id, never by guess.

Where files carry names, the names decide: a header of class names orders
the logits' columns, a soft-label header is matched to them by name, and
``--classes`` must agree with a header (the same names in another order
reorder the columns, and say so). Where both files carry row ids, rows are
joined on them. A labels file whose first line may or may not be a header
is settled by the row counts, or refused with both readings named.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..bfloat16 import BFLOAT16, widened
from ..errors import XentError
from . import labels as label_rules
from .registry import STDIN, ReadOptions, Source, is_url, read_source
from .text import TextTable, is_integer, is_number, is_positional

LABEL_KEYS = ("labels", "targets", "target", "label", "y")
TOKEN_KEYS = ("input_ids",)  # a language model's input tokens: its labels once shifted (--shift)
MASK_KEYS = ("attention_mask",)
NO_IDS = "none"  # --id-col none: no column is an id by its name
READ_AHEAD_BYTES = 64 << 20  # a labels file up to this size is read on a helper thread (_read_ahead)

# The bundled example: torch.randn(3, 5) as printed in the notebook xent grew from, targets [3, 0, 2].
EXAMPLE_LOGITS = np.array(
    [
        [0.0590, 0.3317, 1.2978, -1.3694, 0.2554],
        [0.9160, 2.4308, -1.3641, -0.4327, 0.0316],
        [-0.7676, -0.6493, 0.0933, -0.9304, -1.1471],
    ]
)
EXAMPLE_TARGETS = np.array([3, 0, 2])
EXAMPLE_NAME = "<bundled example>"

Locate = Callable[[int], str]


@dataclass(frozen=True)
class Batch:
    """What the engine needs, plus names and provenance for the renderers.

    `notices` are the readings a user should hear about (a header taken
    from pandas' column index, columns reordered by name, rows joined on ids).
    """

    logits: np.ndarray
    target: np.ndarray
    class_axis: int
    logits_name: str
    labels_name: str
    class_names: tuple[str, ...] | None
    locate_logits: Locate
    locate_labels: Locate
    notices: tuple[str, ...] = field(default=())
    ids: tuple[str, ...] | None = None  # the logits' row ids, where the file has them
    joined: bool = False  # the labels were matched to the logits by those ids
    task: str = "multiclass"  # or "binary" (one score per row), "multilabel"
    mask: np.ndarray | None = None  # an attention mask found beside the logits (1 count, 0 ignore)


def class_name(names: Sequence[str] | None, index: int, with_index: bool = False) -> str:
    """A class's name ("2 bird" with its index), or its index when it has none."""
    if not names or not 0 <= index < len(names):
        return str(index)
    return f"{index} {names[index]}" if with_index else names[index]


def array_locator(name: str, shape: tuple[int, ...]) -> Locate:
    def locate(position: int) -> str:
        if not shape:
            return name
        index = ", ".join(str(int(i)) for i in np.unravel_index(position, shape))
        return f"{name}[{index}]"

    return locate


def position_shape(shape: tuple[int, ...], class_axis: int) -> tuple[int, ...]:
    """The shape of the positions: the array's shape without its class axis."""
    if len(shape) <= 1:
        return (1,)
    axis = class_axis % len(shape)
    return shape[:axis] + shape[axis + 1 :]


@dataclass
class _Side:
    """One input's data while the batch is assembled."""

    name: str
    values: np.ndarray
    locate: Locate
    ids: list[str] | None = None
    names: tuple[str, ...] | None = None  # of the columns, for a table with a header
    # logits: where each of the file's own columns went when they were put in another class order
    moved: np.ndarray | None = None
    # labels: class indices (positions in the logits file's own columns), not names or probabilities
    indices: bool = False
    pandas_index: bool = False  # the ids are pandas' unnamed index column


def _column_index(table: TextTable, column: str) -> int:
    if table.header and column in table.header:
        return table.header.index(column)
    try:
        index = int(column)
    except ValueError:
        known = ", ".join(c for c in table.header or () if c) or "none: the file has no header"
        raise XentError(f"no column named {column!r} (columns: {known})", table.name) from None
    columns = table.data_columns()
    if not 0 <= index < len(columns):
        raise XentError(f"column index {index} is out of range (0..{len(columns) - 1})", table.name)
    return columns[index]


def _ids(table: TextTable) -> list[str] | None:
    if table.row_numbers:  # 0..N-1: the rows' positions, which pair them already
        return None
    return table.cells(table.id_columns[-1]) if table.id_columns else None


def _pandas_index(table: TextTable) -> bool:
    """Whether the row ids are pandas' unnamed index column (the header's empty first cell)."""
    return bool(table.id_columns and table.header is not None and table.header[table.id_columns[-1]] == "")


def _row_numbers_notice(table: TextTable) -> list[str]:
    if not table.row_numbers:
        return []
    return [f"{table.name}: the first column holds 0, 1, 2, … (the row numbers, as pandas' to_csv writes its index "
            "without a header): read as row ids, not a class (--id-col none keeps it a class)"]


def _header_notice(table: TextTable, columns: Sequence[int]) -> list[str]:
    """Said when a header is pandas' default column index (0, 1, …), not names."""
    if table.header is None or not columns or not is_positional([table.header[c] for c in columns]):
        return []
    shown = ",".join(table.header[c] for c in columns[:4]) + (",…" if len(columns) > 4 else "")
    return [f"{table.name}:{table.header_line}: the first row {shown} is pandas' column index: "
            "read as a header (--no-header keeps it as data)"]


def _true_ids(table: TextTable, ids: Sequence[str]) -> TextTable:
    """The table without the id columns found by name that hold fractional numbers:
    those are classes that happen to be called `id` or `index` (Indonesian is
    `id`). Whole numbers stay ids; `--id-col none` makes every named column a class."""
    kept = []
    for column in table.id_columns:
        name = table.header[column] if table.header else ""
        if name and name not in ids and _fractional(table.cells(column)):
            continue
        kept.append(column)
    return replace(table, id_columns=tuple(kept)) if len(kept) != len(table.id_columns) else table


def _fractional(cells: Sequence[str]) -> bool:
    return all(is_number(c) for c in cells) and not all(is_integer(c) for c in cells)


def _default_index(ids: Sequence[str] | None) -> bool:
    """pandas' default index, 0..N-1 in order: positions, not ids."""
    return ids is not None and list(ids) == [str(k) for k in range(len(ids))]


def _ids_notice(side: _Side, other: _Side) -> list[str]:
    """Said when one file carries row ids and the other does not: rows pair by position."""
    if side.ids is None or other.ids is not None or _default_index(side.ids):
        return []  # no ids, ids on both sides (joined), or pandas' default index 0..N-1
    return [f"{side.name}: its row ids are not used (the other file has none): rows are paired by position"]


def _order_by_classes(
    header: tuple[str, ...], classes: Sequence[str], where: str, notices: list[str]
) -> list[int]:
    """The order of the header's columns that puts them in the order of --classes."""
    if len(set(header)) != len(header):
        raise XentError(f"the header names a class twice ({','.join(header)})", where)
    if list(header) == list(classes):
        return list(range(len(header)))
    if sorted(header) != sorted(classes):
        raise XentError(
            f"--classes {','.join(classes)} does not match the header's class names {','.join(header)}",
            where,
        )
    notices.append(f"{where}: columns reordered by name to the class order {','.join(classes)}")
    return [header.index(name) for name in classes]


def _named_ids_notice(table: TextTable) -> list[str]:
    named = [table.header[c] for c in table.id_columns if table.header and table.header[c]]
    if not named:
        return []
    return [f"{table.name}: column {', '.join(map(repr, named))} holds row ids, not a class (--id-col names others)"]


def _one_score(source: Source, label_col: str | None, class_axis: int, key: str | None = None) -> bool:
    """Whether the logits hold one score per row (a binary task, when --task is auto)."""
    if source.table is not None:
        return len(source.table.data_columns()) - (label_col is not None) == 1
    if source.frame is not None:
        from .columnar import logit_columns

        frame = source.frame
        scores, _ = logit_columns(frame, [n for n in frame.names if n != label_col and n.lower() not in LABEL_KEYS])
        return len(scores) == 1 and frame.list_width(scores[0]) is None
    if source.archive is not None:
        found = _archive_logits_key(source.archive, key)
        if found not in source.archive.keys:
            return False  # the logits side names the problem
        shape = source.archive.get(found).shape
    else:
        shape = source.array.shape
    return len(shape) == 1 or (len(shape) == 2 and shape[class_axis % 2] == 1)


def _archive_logits_key(archive: Any, key: str | None) -> str | None:
    """The archive's logits: --key, else its `logits`, else its only array (None: ask for --key)."""
    return key or ("logits" if "logits" in archive.keys else archive.keys[0] if len(archive.keys) == 1 else None)


def _logits_side(
    source: Source, key: str | None, label_col: str | None, classes: Sequence[str] | None,
    class_axis: int, notices: list[str], ids_named: Sequence[str] = (), order: Sequence[str] | None = None,
    binary_names: Sequence[str] | None = None, binary: bool = False, logits_cols: str | None = None,
    labels_given: bool = False,
) -> tuple[_Side, _Side | None]:
    """The logits (and labels from --label-col, or from the same archive).

    `classes` (--classes) name the classes in the order class indices count
    them; `order` only puts a header's columns in another class order (the
    first file's, for many files): there integer labels keep pointing at the
    file's own columns, and follow them."""
    if source.table is not None:
        table = source.table
        if table.undecided:
            # pandas' column index above whole numbers, or names above cells that are no numbers
            # either: the first row is the header, and the reader names the bad cell below it
            table = table.with_header(ids_named)
        table = _true_ids(table.decided(ids_named), ids_named)
        labels = None
        if label_col is not None:
            label_index = _column_index(table, label_col)
            table = replace(table, id_columns=tuple(c for c in table.id_columns if c != label_index))
            columns = [c for c in table.data_columns() if c != label_index]
        else:
            columns = table.data_columns()
        if not columns:
            raise XentError("no columns left for the logits", table.name)
        notices += _header_notice(table, columns) + _named_ids_notice(table) + _row_numbers_notice(table)
        header = None if table.header is None else tuple(table.header[c] for c in columns)
        if header is not None and is_positional(header):
            header = None
        moved = None
        wanted = classes or order
        if wanted and header:
            new_order = _order_by_classes(header, wanted, table.name, notices)
            columns = [columns[k] for k in new_order]
            if not classes and new_order != sorted(new_order):
                moved = np.argsort(new_order)  # the file's column k is now class moved[k]
        names = tuple(wanted) if wanted else header
        ids = _ids(table)
        if label_col is not None:
            values, indices = _labels_from_column(table, label_index, binary_names if binary else names, binary)
            labels = _Side(table.name, values, table.locate, ids, indices=indices)
        logits = _Side(table.name, table.numbers(columns), table.locate, ids, names, moved=moved,
                       pandas_index=_pandas_index(table))
        return logits, labels
    if source.frame is not None:
        return _frame_logits(source.frame, label_col, logits_cols, classes, order, notices, binary_names, binary,
                             labels_given)
    if label_col is not None:
        raise XentError("--label-col applies to text and columnar files; this input is an array", source.name)
    if logits_cols is not None:
        raise XentError("--logits-cols picks columns of a Parquet or Arrow file; this input is an array", source.name)
    names = tuple(classes or order) if classes or order else None
    if source.archive is None:
        array = source.array
        return _Side(source.name, array, array_locator(source.name, position_shape(array.shape, class_axis)), names=names), None
    archive = source.archive
    logits_key = _archive_logits_key(archive, key)
    if logits_key is None:
        raise XentError(
            f"the archive holds {len(archive.keys)} arrays ({', '.join(archive.keys)}): choose the logits with --key",
            source.name,
        )
    array = archive.get(logits_key)
    name = f"{source.name}[{logits_key}]"
    return _Side(name, array, array_locator(name, position_shape(array.shape, class_axis)), names=names), None


def _frame_logits(
    frame: Any, label_col: str | None, logits_cols: str | None, classes: Sequence[str] | None,
    order: Sequence[str] | None, notices: list[str], binary_names: Sequence[str] | None, binary: bool,
    labels_given: bool,
) -> tuple[_Side, _Side | None]:
    """The logits of a Parquet or Arrow file: one numeric column per class (named by
    the columns) or one column of lists; the labels from --label-col, or from a
    column named as labels are (labels, target, ...) when no LABELS file is given."""
    from .columnar import ColumnMatrix, logit_columns, select  # pyarrow's readers only for such files

    names = frame.names
    label = label_col
    if label is not None and label not in names:
        raise XentError(f"no column named {label!r} (columns: {', '.join(names)})", frame.name)
    named = next((n for n in names if n.lower() in LABEL_KEYS), None)  # a column named as labels are
    if label is None and not labels_given and named is not None:
        label = named
        notices.append(f"{frame.name}: labels from its column {label!r}")
    if logits_cols is not None:
        chosen = select(names, logits_cols)
    else:
        left = [n for n in names if n not in (label, named)]  # never a class, even beside a LABELS file
        if named is not None and named != label:
            notices.append(f"{frame.name}: column {named} is not a logit (LABELS holds the labels)")
        chosen, shown = logit_columns(frame, left)
        if shown:
            what = f"column {shown[0]} is not a logit" if len(shown) == 1 else f"columns {', '.join(shown)} are not logits"
            notices.append(f"{frame.name}: {what} (--logits-cols picks the logit columns)")
    if not chosen:
        raise XentError("no numeric columns left for the logits", frame.name)
    widths = [frame.list_width(n) for n in chosen]
    moved = None  # where the file's own columns went, when put in another class order
    if any(w is not None for w in widths):
        if len(chosen) != 1:
            raise XentError(f"the logits are one column of lists or several numeric columns, not both ({', '.join(chosen)})",
                            frame.name)
        matrix, header = ColumnMatrix(frame, chosen, widths[0]), None
    else:
        wrong = [n for n in chosen if not frame.numeric(n)]
        if wrong:
            raise XentError(f"column {wrong[0]!r} holds {frame.schema.field(wrong[0]).type}, not numbers", frame.name)
        header = tuple(chosen)
        wanted = classes or order
        if wanted:
            new_order = _order_by_classes(header, wanted, frame.name, notices)
            chosen = [chosen[k] for k in new_order]
            if not classes and new_order != sorted(new_order):
                moved = np.argsort(new_order)
            header = tuple(wanted)
        matrix = ColumnMatrix(frame, chosen)
    names_out = header if header is not None else (tuple(classes) if classes else None)
    locate = frame.locate
    logits = _Side(frame.name, matrix, locate, names=names_out, moved=moved)
    labels = None
    if label is not None:
        values = frame.column(label)
        labels = _array_labels(f"{frame.name}[{label}]", values, binary_names if binary else names_out, binary)
    return logits, labels


def _labels_from_column(
    table: TextTable, column: int, names: Sequence[str] | None, binary: bool = False
) -> tuple[np.ndarray, bool]:
    """(the labels, whether they are class indices rather than names)."""
    if not binary and label_rules.names_are_positions(names):
        indices = table.indices()
        if indices is not None:  # one column of plain integers: class indices as they are
            return indices, True
    values = table.column(column)
    if binary:
        if isinstance(values, np.ndarray):  # numbers already: 0/1 or probabilities, checked by the engine
            return values, True
        return label_rules.binary_from_cells(values, names, table.locate), True
    if isinstance(values, np.ndarray):
        if not label_rules.names_are_positions(names):
            values = table.cells(column)
        else:
            return label_rules.as_indices(values, table.locate, lambda row: table.cells(column)[row]), True
    return label_rules.from_cells(values, names, table.locate), label_rules.read_as_indices(values, names)


def _settle_header(
    table: TextTable, rows: int, logits_name: str, class_names: Sequence[str] | None, options: ReadOptions,
    notices: list[str],
) -> TextTable:
    """A labels file whose first line may be a header: the row counts decide."""
    if not table.undecided:
        return table
    cells = table.first_row()
    count, first = table.rows, ",".join(cells)
    if class_names and len(cells) == 1 and cells[0] in class_names:
        return table.decided(options.ids)  # a class name in a column of labels is a label, whatever the counts say
    if count == rows + 1:
        notices.append(
            f"{table.name}:{table.header_line}: the first line {first!r} is a header "
            f"(the file has one line more than the {rows} rows of logits; --no-header says otherwise)"
        )
        return table.with_header(options.ids)
    if count == rows:
        return table.decided(options.ids)
    raise XentError(
        f"{count} rows of labels (or {count - 1} if the first line {first!r} is a header) "
        f"but {logits_name} has {rows} rows of logits",
        table.name,
    )


def _labels_side(
    source: Source, labels_key: str | None, logits: _Side, rows: int, classes: int, options: ReadOptions,
    notices: list[str], binary_names: Sequence[str] | None = None, binary: bool = False,
) -> _Side:
    if source.table is not None:
        table = _settle_header(source.table, rows, logits.name, logits.names, options, notices)
        table = _true_ids(table, options.ids)
        columns = table.data_columns()
        if not columns:
            raise XentError("no columns left for the labels", table.name)
        header = [table.header[c] for c in columns] if table.header else []
        # One column per class is soft labels, whatever the classes are called (a class may be `y`).
        soft = len(columns) > 1 and (len(columns) == classes or (logits.names and set(header) == set(logits.names)))
        named = [c for c in columns if table.header and table.header[c].lower() in LABEL_KEYS]
        ids = _ids(table)
        notices += _named_ids_notice(table) + _row_numbers_notice(table) + (_header_notice(table, columns) if len(columns) > 1 else [])
        if len(columns) == 1 or (named and not soft):
            column = named[0] if named else columns[0]
            names = binary_names if binary else logits.names
            values, indices = _labels_from_column(table, column, names, binary)
            return _Side(table.name, values, table.locate, ids, indices=indices, pandas_index=_pandas_index(table))
        return replace(_soft_side(table, columns, logits, ids, notices), pandas_index=_pandas_index(table))
    if source.frame is not None:
        frame = source.frame
        column = next((n for n in frame.names if n.lower() in LABEL_KEYS), None) or labels_key
        if column is None and len(frame.names) == 1:
            column = frame.names[0]
        if column is None:
            raise XentError(f"cannot tell which column holds the labels ({', '.join(frame.names)}): "
                            f"choose with --labels-key, or name it one of {', '.join(LABEL_KEYS)}", frame.name)
        return _array_labels(f"{frame.name}[{column}]", frame.column(column), binary_names if binary else logits.names,
                             binary)
    if source.archive is not None:
        archive = source.archive
        key = labels_key or next((k for k in LABEL_KEYS if k in archive.keys), None)
        if key is None and len(archive.keys) == 1:
            key = archive.keys[0]
        if key is None:
            raise XentError(
                f"cannot tell which array holds the labels ({', '.join(archive.keys)}): "
                f"choose with --labels-key, or name it one of {', '.join(LABEL_KEYS)}",
                source.name,
            )
        array, name = archive.get(key), f"{source.name}[{key}]"
    else:
        array, name = source.array, source.name
    return _array_labels(name, array, binary_names if binary else logits.names, binary)


def _array_labels(name: str, array: np.ndarray, names: Sequence[str] | None, binary: bool = False) -> _Side:
    locate = array_locator(name, array.shape)
    indices = binary or array.dtype.kind in "biuf" or label_rules.read_as_indices(
        [str(c) for c in array.reshape(-1)[:1000]], names)
    return _Side(name, label_rules.from_array(array, names, locate, binary), locate, indices=indices)


def _soft_side(table: TextTable, columns: list[int], logits: _Side, ids: list[str] | None, notices: list[str]) -> _Side:
    """Soft labels from a table; a header of class names is matched to the logits' classes by name."""
    header = None if table.header is None else tuple(table.header[c] for c in columns)
    if header is not None and not is_positional(header):
        if logits.names is None:
            logits.names = header
        elif header != logits.names:
            if sorted(header) != sorted(logits.names):
                raise XentError(
                    f"the soft labels' classes ({','.join(header)}) are not the logits' ({','.join(logits.names)})",
                    table.name,
                )
            columns = [columns[header.index(name)] for name in logits.names]
            notices.append(f"{table.name}: soft-label columns matched to the logits' classes by name")
    first = table.first_row()
    flags = table.flags(columns) if all(first[c].lower() in ("true", "false") for c in columns) else None
    values = flags if flags is not None else table.numbers(columns)  # pandas' get_dummies writes True/False
    return _Side(table.name, values, table.locate, ids)


def _check_id_columns(ids: Sequence[str], tables: Sequence[TextTable | None]) -> None:
    """Every --id-col must name a column of one of the files: a typo would make the ids a class."""
    headers = [name for table in tables if table is not None and table.header for name in table.header]
    missing = [name for name in ids if name not in headers and name != NO_IDS]
    if missing:
        known = ", ".join(name for name in dict.fromkeys(headers) if name) or "none: the files have no header"
        raise XentError(f"--id-col {missing[0]!r} names no column (columns: {known})")


def _join(logits: _Side, labels: _Side, notices: list[str]) -> None:
    """Reorder the labels to the logits' rows by their ids (both files carry them)."""
    if logits.ids is None or labels.ids is None or logits.ids == labels.ids:
        return
    where: dict[str, int] = {}
    for row, key in enumerate(labels.ids):
        if key in where:
            raise XentError(f"id {key!r} appears twice", labels.locate(row))
        where[key] = row
    order = np.empty(len(logits.ids), dtype=np.int64)
    seen: set[str] = set()
    for row, key in enumerate(logits.ids):
        if key in seen:
            raise XentError(f"id {key!r} appears twice", logits.locate(row))
        seen.add(key)
        if key not in where:
            raise XentError(f"id {key!r} has no label in {labels.name}", logits.locate(row))
        order[row] = where[key]
    extra = next((key for key in labels.ids if key not in seen), None)
    if extra is not None:
        raise XentError(f"id {extra!r} has a label but no logits in {logits.name}", labels.locate(where[extra]))
    locate = labels.locate
    labels.values = np.asarray(labels.values)[order]  # a streamed text matrix is read whole to be reordered
    labels.locate = lambda position: locate(int(order[position]))
    notices.append(f"rows of {labels.name} joined to {logits.name} by id")


def _read_ahead(path: str, options: ReadOptions) -> Future | None:
    """A local labels file read, and its numbers parsed, on another thread while
    the logits are read: counting a large CSV's rows is bound by memory and
    leaves a core half idle (the 95 MB benchmark CSV and its 1M labels: both
    read in 20-24 ms, 27-31 in turn).
    What it raises, it raises where the labels are read. Not stdin or a URL,
    nor a file over READ_AHEAD_BYTES: the thread is waited for at exit, so a
    Ctrl-C must not wait for a long read."""
    if path == STDIN or is_url(path) or not os.path.isfile(path) or os.path.getsize(path) > READ_AHEAD_BYTES:
        return None
    from concurrent.futures import ThreadPoolExecutor

    def read() -> Source:
        source = read_source(path, options)
        if source.table is not None:
            source.table.parse_ahead()
        return source

    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(read)
    finally:
        pool.shutdown(wait=False)


def load_batch(
    logits_path: str | None,
    labels_path: str | None = None,
    *,
    key: str | None = None,
    labels_key: str | None = None,
    label_col: str | None = None,
    classes: Sequence[str] | None = None,
    order: Sequence[str] | None = None,
    class_axis: int = 1,
    delimiter: str | None = None,
    header: bool | None = None,
    ids: Sequence[str] = (),
    options: ReadOptions | None = None,
    stdin=None,
    task: str = "auto",
    shift: bool = False,
    logits_cols: str | None = None,
) -> Batch:
    """Read the logits and the labels into a Batch (the bundled example if no paths).

    `task` "binary" (or "auto" with one score per row) reads the labels as
    binary targets, `classes` then naming the negative and positive class.
    `shift` (a causal LM's next-token targets, made by the caller) lets an
    archive's `input_ids` be the labels and its `attention_mask` the mask."""
    if logits_path is None:
        return example_batch()
    if logits_path == STDIN and labels_path == STDIN:
        raise XentError("only one of LOGITS and LABELS can be read from stdin ('-')")
    if options is None:
        options = ReadOptions(delimiter=delimiter, header=header, ids=tuple(ids), stdin=stdin)
    elif (delimiter, header, tuple(ids), stdin) != (None, None, (), None):
        raise TypeError("load_batch takes either options= or delimiter=/header=/ids=/stdin=, not both")
    notices: list[str] = []
    if classes and len(set(classes)) != len(classes):
        raise XentError(f"--classes names a class twice ({','.join(classes)})")
    source = read_source(logits_path, options)
    notices += source.notices
    binary = task == "binary" or (task == "auto" and _one_score(source, label_col, class_axis, key))
    binary_names = None
    if binary:
        if classes and len(classes) != 2:
            raise XentError(f"a binary task has two classes (negative, positive), but --classes names {len(classes)}")
        binary_names, classes = classes, None
    ahead = _read_ahead(labels_path, options) if labels_path is not None else None
    logits, labels = _logits_side(source, key, label_col, classes, class_axis, notices, options.ids, order, binary_names,
                                  binary, logits_cols, labels_path is not None)
    if logits.values.ndim == 0:
        raise XentError("holds a single number (a 0-d array), not a row of logits", logits.name)
    if logits.values.dtype.kind != "f" and logits.values.dtype != BFLOAT16:
        hint = " (are LOGITS and LABELS the other way round?)" if logits.values.dtype.kind in "iu" else ""
        raise XentError(f"logits must be floating point numbers, got {logits.values.dtype}{hint}", source.name)
    vector = logits.values
    if binary and vector.ndim == 1:
        logits.values = vector.reshape(-1, 1)  # one score per row
        if source.table is None and source.frame is None:  # an array's places: one per score, not one row of classes
            logits.locate = array_locator(logits.name, vector.shape)
    shape = logits.values.shape
    if binary and len(shape) > 1 and shape[class_axis % len(shape)] != 1:
        raise XentError(
            f"--task binary takes one score per row, but the logits have {shape[class_axis % len(shape)]} columns "
            "(--task multilabel gives each column its own sigmoid)",
            logits.name,
        )
    rows = position_shape(shape, class_axis)[0] if shape else 1
    labels_table = None
    mask = None
    if labels is None and source.archive is not None and labels_path is None:
        archive = source.archive
        found = labels_key or next((k for k in LABEL_KEYS if k in archive.keys), None)
        tokens = next((k for k in TOKEN_KEYS if k in archive.keys), None)
        if found is None and tokens is not None:
            if not shift:
                raise XentError(
                    f"the archive holds {tokens} but no labels: a causal LM's labels are its next tokens, "
                    "so say --shift (or name the labels with --labels-key)",
                    source.name,
                )
            found = tokens
        if found is not None:
            labels = _array_labels(f"{source.name}[{found}]", archive.get(found), logits.names)
        mask_key = next((k for k in MASK_KEYS if k in archive.keys), None)
        if shift and mask_key is not None:
            mask = archive.get(mask_key)
            notices.append(f"{source.name}[{mask_key}]: its 0s are ignored (the attention mask beside the logits)")
    if labels is None:
        if labels_path is None:
            raise XentError("no labels: give a LABELS file, or --label-col for a column of LOGITS")
        labels_source = ahead.result() if ahead is not None else read_source(labels_path, options)
        labels_table = labels_source.table
        classes_count = shape[class_axis % len(shape)] if len(shape) > 1 else (shape[0] if shape else 1)
        labels = _labels_side(labels_source, labels_key, logits, rows, classes_count, options, notices, binary_names, binary)
    _check_id_columns(options.ids, [source.table, labels_table])
    for side, other in ((logits, labels), (labels, logits)):
        if side.pandas_index and _default_index(side.ids) and other.ids is not None and not _default_index(other.ids):
            side.ids = None  # pandas' 0..N-1 index is positions, not ids: it pairs by position
    notices += _ids_notice(logits, labels) + _ids_notice(labels, logits)
    joined = logits.ids is not None and labels.ids is not None
    _join(logits, labels, notices)
    if binary and task == "auto" and vector.ndim == 1 and np.size(labels.values) == 1 and vector.size > 1:
        binary = False  # a vector of logits with its one label: one row of classes, as before
        logits.values, shape, rows = vector, vector.shape, 1
    target = _shaped(widened(labels.values), shape)
    if logits.moved is not None and labels.indices and target.shape != shape:
        target = _follow(target, logits.moved)
    names = logits.names
    if names is not None and shape and len(names) != shape[class_axis % len(shape)]:
        raise XentError(
            f"{len(names)} class names ({', '.join(names)}) but the logits have {shape[class_axis % len(shape)]} classes"
        )
    soft = target.shape == shape and len(shape) > 1
    label_rows = len(target) if target.ndim > 0 else 1
    logits_rows = len(logits.values) if soft else rows
    if logits_rows != label_rows:
        raise XentError(f"{labels.name} has {label_rows} rows of labels but {logits.name} has {logits_rows} rows of logits")
    return Batch(
        logits=logits.values,
        target=target,
        class_axis=class_axis,
        logits_name=source.name,
        labels_name=labels.name,
        locate_logits=logits.locate,
        locate_labels=labels.locate,
        notices=tuple(notices),
        ids=None if logits.ids is None else tuple(logits.ids),
        joined=joined,
        task="binary" if binary else ("multilabel" if task == "multilabel" else "multiclass"),
        class_names=tuple(binary_names) if binary and binary_names else names,
        mask=mask,
    )


def _follow(target: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """Class indices that point at the file's own columns, pointed at where those columns went."""
    values = np.asarray(target)
    whole = values.astype(np.int64) if values.dtype.kind == "f" else values
    inside = (whole >= 0) & (whole < len(moved)) & (whole == values)
    return np.where(inside, moved[np.clip(whole, 0, len(moved) - 1)], values)


def _shaped(target: np.ndarray, logits_shape: tuple[int, ...]) -> np.ndarray:
    """Keras' sparse labels (N, 1) as (N,); one-hot integer or boolean matrices as probabilities."""
    if target.ndim == 2 and target.shape[1] == 1 and len(logits_shape) == 2 and logits_shape[1] != 1:
        target = target.reshape(-1)
    if target.shape == logits_shape and len(logits_shape) > 1 and target.dtype.kind in "biu":
        if target.size and (target.min() < 0 or target.max() > 1):
            raise XentError(
                "labels of the logits' shape are soft labels: probabilities, or a one-hot matrix of 0 and 1"
            )
        target = target.astype(np.float64)
    return target


def example_batch() -> Batch:
    """The bundled 3×5 example with targets [3, 0, 2]."""

    def locate(row: int) -> str:
        return f"{EXAMPLE_NAME} row {row}"

    return Batch(
        logits=EXAMPLE_LOGITS,
        target=EXAMPLE_TARGETS,
        class_axis=1,
        logits_name=EXAMPLE_NAME,
        labels_name=EXAMPLE_NAME,
        class_names=None,
        locate_logits=locate,
        locate_labels=locate,
    )
