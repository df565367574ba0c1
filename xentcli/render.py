"""Renderers: a computed loss -> the rich table, JSON, CSV/TSV, YAML or a bare value.

The machine formats are written with the standard library (and PyYAML),
never through rich; rich is imported only to draw the table.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .inputs import Batch
from .loss import Result

SCHEMA_VERSION = 1
PER_ROW_KEYS = ("row", "target", "p_target", "log_p_target", "loss", "pred")
MAX_CLASS_COLUMNS = 10
TOP_K = 3


@dataclass(frozen=True)
class Report:
    """Everything a renderer shows: the result, where it came from, how it was made."""

    result: Result
    batch: Batch
    options: dict[str, Any]
    files: list[dict[str, Any]] | None = None

    def index(self, position: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(position, self.result.shape))

    @property
    def extra_dims(self) -> bool:
        return len(self.result.shape) > 1

    def class_name(self, index: int) -> str:
        names = self.batch.class_names
        return names[index] if names and 0 <= index < len(names) else str(index)


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    value = float(value)
    return value if math.isfinite(value) else None


def as_dict(report: Report, per_row: bool) -> dict[str, Any]:
    """The JSON object of SPEC §5 (schema version 1)."""
    result = report.result
    loss = result.loss
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "loss": None if loss is None else _number(loss),
        "nan": loss is not None and math.isnan(loss),
        "inf": loss is not None and math.isinf(loss),
        "reduction": result.reduction,
        "sum": _number(result.sum),
        "mean": _number(result.mean),
        "weight_sum": _number(result.weight_sum),
        "rows": result.rows,
        "classes": result.classes,
        "ignored": result.ignored,
        "accuracy": _number(result.accuracy),
        "perplexity": _number(result.perplexity),
        "soft_labels": result.soft,
        "backend": result.backend,
        "device": result.device,
        "device_name": result.device_name,
        "dtype": result.dtype,
        "inputs": _inputs(report),
        "class_names": list(report.batch.class_names) if report.batch.class_names else None,
        "options": report.options,
        "warnings": list(result.warnings),
    }
    if report.files:
        data["files"] = [{k: _number(v) if isinstance(v, float) else v for k, v in f.items()} for f in report.files]
    if per_row or result.reduction == "none":
        data["per_row"] = list(_per_row(report))
    return data


def _inputs(report: Report) -> dict[str, Any]:
    if report.files:
        return {"logits": [f["logits"] for f in report.files], "labels": [f["labels"] for f in report.files]}
    return {"logits": report.batch.logits_name, "labels": report.batch.labels_name}


def _per_row(report: Report):
    result = report.result
    p_target = result.p_target
    for position in range(result.rows):
        row: dict[str, Any] = {
            "row": position,
            "target": int(result.target[position]),
            "p_target": _number(p_target[position]),
            "log_p_target": _number(result.log_p_target[position]),
            "loss": _number(result.losses[position]),
            "pred": int(result.pred[position]),
        }
        if report.extra_dims:
            row["index"] = list(report.index(position))
        yield row


def to_json(report: Report, per_row: bool) -> str:
    return json.dumps(as_dict(report, per_row), indent=2, allow_nan=False) + "\n"


def to_yaml(report: Report, per_row: bool) -> str:
    import yaml

    return yaml.safe_dump(as_dict(report, per_row), sort_keys=False, allow_unicode=True)


def to_csv(report: Report, delimiter: str = ",") -> str:
    """The per-row table, header first, columns named as the JSON per_row keys."""
    buffer = io.StringIO()
    keys = PER_ROW_KEYS + (("index",) if report.extra_dims else ())
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(keys)
    for row in _per_row(report):
        values = ["" if row[k] is None else row[k] for k in keys]
        if report.extra_dims:
            values[-1] = " ".join(str(i) for i in row["index"])
        writer.writerow([repr(v) if isinstance(v, float) else v for v in values])
    return buffer.getvalue()


def to_value(report: Report) -> str:
    """The reduced loss alone (one loss per line for reduction none)."""
    result = report.result
    if result.loss is None:
        return "".join(f"{float(v)!r}\n" for v in result.losses)
    return f"{result.loss!r}\n"


def write_atomically(path: str, text: str) -> None:
    """Write a file whole or not at all: a temp file renamed into place."""
    target = Path(path)
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def shown_positions(rows: int, limit: int) -> tuple[list[int], int]:
    """The positions the table shows (head and tail) and how many it skips."""
    if limit <= 0 or rows <= limit:
        return list(range(rows)), 0
    head = (limit + 1) // 2
    tail = limit - head
    return list(range(head)) + list(range(rows - tail, rows)), rows - limit


def table(
    report: Report,
    shown: Sequence[int],
    rows: Result,
    probabilities: np.ndarray,
    hidden: int,
    precision: int,
    width: int = 80,
):
    """The rich renderable: the per-row table and the summary under it.

    `rows` holds the per-row numbers of the `shown` positions, in order, and
    `probabilities` their softmax; `hidden` counts the positions left out.

    Every class gets a column when there are at most 10 and they fit in
    `width`; otherwise p(target) and the top 3 classes are shown.
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    result = report.result
    fmt = f"{{:.{precision}f}}"
    class_width = max([precision + 3] + [len(report.class_name(c)) + 3 for c in range(result.classes)])
    all_classes = (
        result.classes <= MAX_CLASS_COLUMNS
        and 3 * precision + 36 + (class_width + 2) * result.classes <= width
    )
    grid = Table(
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        caption=f"… {hidden} rows not shown (--rows 0 shows all) …" if hidden else None,
        caption_justify="left",
    )
    # Text, never markup: class names come from the user's files.
    grid.add_column("row" if not report.extra_dims else "index", justify="right")
    grid.add_column("target", justify="left")
    if all_classes:
        for c in range(result.classes):
            grid.add_column(Text(f"p({report.class_name(c)})"), justify="right")
    else:
        grid.add_column("p(t)", justify="right")
        grid.add_column(f"top {TOP_K}", justify="left")
    grid.add_column("log p(t)", justify="right")
    grid.add_column("loss", justify="right")
    grid.add_column("pred", justify="left")

    for k, position in enumerate(shown):
        if hidden and k == len(shown) - (len(shown) // 2):
            grid.add_row(*(["⋮"] * len(grid.columns)), style="dim")
        target = int(rows.target[k])
        ignored = bool(rows.ignored_mask[k])
        pred = int(rows.pred[k])
        p = probabilities[k]
        label = ",".join(str(i) for i in report.index(position)) if report.extra_dims else str(position)
        target_cell = "ignored" if ignored else _named(report, target)
        if result.soft and not ignored:
            target_cell += " (soft)"
        cells: list[Any] = [label, Text(target_cell)]
        if all_classes:
            for c in range(result.classes):
                style = "bold reverse" if c == target and not ignored else ""
                cells.append(Text(fmt.format(p[c]), style=style))
        else:
            cells.append("—" if ignored else fmt.format(p[target]))
            top = np.argsort(-p, kind="stable")[:TOP_K]
            cells.append(Text("  ".join(f"{report.class_name(int(c))}:{fmt.format(p[c])}" for c in top)))
        cells.append("—" if ignored else fmt.format(rows.log_p_target[k]))
        cells.append(fmt.format(rows.losses[k]))
        mark = Text("", style="dim") if ignored else (
            Text(" ✓", style="green") if pred == target else Text(" ✗", style="red")
        )
        cells.append(Text(_named(report, pred)) + mark)
        grid.add_row(*cells)
    return Group(grid, Text(""), summary(report, precision))


def files_table(report: Report, precision: int):
    """For several files: one line per file, and the summary of them all."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    fmt = f"{{:.{precision}f}}"
    grid = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False)
    for name, justify in (("logits", "left"), ("labels", "left"), ("rows", "right"), ("ignored", "right"),
                          ("accuracy", "right"), ("loss (mean)", "right")):
        grid.add_column(name, justify=justify)
    for f in report.files:
        counted = f["rows"] - f["ignored"]
        accuracy = f"{f['correct'] / counted:.1%}" if counted else "—"
        grid.add_row(Text(f["logits"]), Text(f["labels"]), str(f["rows"]), str(f["ignored"]), accuracy,
                     fmt.format(f["mean"]))
    return Group(grid, Text(""), summary(report, precision))


def _named(report: Report, index: int) -> str:
    names = report.batch.class_names
    return f"{index} {names[index]}" if names and 0 <= index < len(names) else str(index)


def summary(report: Report, precision: int):
    """The reduced loss and the counts around it."""
    from rich.table import Table
    from rich.text import Text

    result = report.result
    fmt = f"{{:.{precision}f}}"
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    reduction = result.reduction if result.reduction != "none" else "mean"
    headline = result.sum if reduction == "sum" else result.mean
    lines.add_row(f"loss ({reduction})", Text(fmt.format(headline), style="bold cyan"))
    if reduction == "mean":
        lines.add_row("sum", f"{fmt.format(result.sum)} / weight sum {result.weight_sum:g}")
    else:
        lines.add_row("mean", fmt.format(result.mean))
    lines.add_row(
        "rows",
        f"{result.rows} · classes {result.classes} · ignored {result.ignored}"
        + (" · soft labels" if result.soft else ""),
    )
    counted = result.rows - result.ignored
    if counted:
        lines.add_row("accuracy", f"{result.accuracy:.1%} ({result.correct}/{counted})")
    lines.add_row("perplexity", f"{result.perplexity:.{precision}g}")
    device = f"{result.device} ({result.device_name})" if result.device_name else result.device
    lines.add_row("computed", Text(f"{result.backend} · {device} · {result.dtype}"))
    return lines
