"""Renderers: a computed loss -> the rich table, JSON, CSV/TSV, YAML or a bare value.

The machine formats are written with the standard library (and PyYAML),
never through rich; rich is imported only to draw the table.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .inputs import Batch, class_name
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
        return class_name(self.batch.class_names, index)


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
        "bits": _number(result.bits),
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
    if result.metrics is not None:
        data["metrics"] = _metrics(result.metrics)
    if report.files:
        data["files"] = [{k: _number(v) if isinstance(v, float) else v for k, v in f.items()} for f in report.files]
    if per_row or result.reduction == "none":
        data["per_row"] = list(_per_row(report))
    return data


def _metrics(metrics) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, (float, np.floating)):
            return _number(value)
        return value

    return clean(
        {
            "top_k": metrics.top_k,
            "top_k_accuracy": metrics.top_k_accuracy,
            "mean_entropy": metrics.mean_entropy,
            "ece": metrics.ece,
            "reliability": metrics.reliability(),
            "loss_histogram": metrics.histogram(),
            "by_class": metrics.by_class(),
        }
    )


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
    import csv

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
    import tempfile

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
    from rich.console import Console, Group
    from rich.text import Text

    grid = None
    if report.result.classes <= MAX_CLASS_COLUMNS:
        grid = _rows_table(report, shown, rows, probabilities, hidden, precision, all_classes=True)
        if Console(width=10_000).measure(grid).maximum > width:  # its natural width
            grid = None
    if grid is None:
        grid = _rows_table(report, shown, rows, probabilities, hidden, precision, all_classes=False)
    return Group(grid, Text(""), summary(report, precision))


def _rows_table(report: Report, shown, rows: Result, probabilities, hidden: int, precision: int, all_classes: bool):
    """The per-row table: every class's probability, or p(target) and the top 3."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    result = report.result
    fmt = f"{{:.{precision}f}}"
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

    head = len(shown) - len(shown) // 2  # shown_positions puts the extra row at the head
    for k, position in enumerate(shown):
        if hidden and k == head:
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
    if hidden and head == len(shown):
        grid.add_row(*(["⋮"] * len(grid.columns)), style="dim")
    return grid


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
    return class_name(report.batch.class_names, index, with_index=True)


def summary(report: Report, precision: int):
    """The reduced loss, the counts and metrics around it, and the pictures."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    result = report.result
    metrics = result.metrics
    fmt = f"{{:.{precision}f}}"
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    reduction = result.reduction if result.reduction != "none" else "mean"
    headline = result.sum if reduction == "sum" else result.mean
    lines.add_row(
        f"loss ({reduction})",
        Text(fmt.format(headline), style="bold cyan") + Text(f"  ({fmt.format(result.bits)} bits per row, mean)"),
    )
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
        accuracy = f"{result.accuracy:.1%} ({result.correct}/{counted})"
        if metrics is not None and metrics.top_k:
            accuracy += f" · top-{metrics.top_k} {metrics.top_k_accuracy:.1%}"
        lines.add_row("accuracy", accuracy)
    perplexity = f"{result.perplexity:.{precision}g}"
    if metrics is not None and counted:
        perplexity += f" · entropy {fmt.format(metrics.mean_entropy)} nats · ECE {fmt.format(metrics.ece)}"
    lines.add_row("perplexity", perplexity)
    device = f"{result.device} ({result.device_name})" if result.device_name else result.device
    lines.add_row("computed", Text(f"{result.backend} · {device} · {result.dtype}"))
    parts: list[Any] = [lines]
    if metrics is not None and counted:
        parts += [Text(""), pictures(metrics, precision)]
        if metrics.class_count is not None:
            parts += [Text(""), by_class_table(report, precision)]
    return Group(*parts)


BAR = 24


def _bar(share: float) -> str:
    cells = round(share * BAR * 8)
    return "█" * (cells // 8) + (" ▏▎▍▌▋▊▉"[cells % 8] if cells % 8 else "")


def pictures(metrics, precision: int):
    """Per-row losses as a histogram, and calibration as a reliability diagram."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    def grid() -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", min_width=12)
        table.add_column(justify="right")
        table.add_column(style="cyan", min_width=BAR)
        table.add_column()
        return table

    histogram = grid()
    bins = [b for b in metrics.histogram() if b["rows"]]
    most = max(b["rows"] for b in bins)
    for k, b in enumerate(bins):
        high = "∞" if b["high"] is None else f"{b['high']:g}"
        histogram.add_row("loss per row" if k == 0 else "", f"{b['low']:g}–{high}", _bar(b["rows"] / most), str(b["rows"]))
    calibration = grid()
    for k, b in enumerate(metrics.reliability()):
        calibration.add_row(
            "calibration" if k == 0 else "",
            f"p {b['low']:.2f}–{b['high']:.2f}",
            _bar(b["accuracy"]),
            f"acc {b['accuracy']:.2f} · conf {b['confidence']:.2f} · n={b['rows']}",
        )
    return Group(histogram, Text(""), calibration)


def by_class_table(report: Report, precision: int, limit: int = 50):
    """Per class: rows, mean loss and accuracy (the most frequent classes first beyond `limit`)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    classes = report.result.metrics.by_class()
    shown = classes if len(classes) <= limit else sorted(classes, key=lambda c: -c["rows"])[:limit]
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False,
                 caption=f"… {len(classes) - limit} more classes" if len(classes) > limit else None)
    for name in ("class", "rows", "mean loss", "accuracy"):
        grid.add_column(name, justify="left" if name == "class" else "right")
    fmt = f"{{:.{precision}f}}"
    for c in shown:
        counted = c["rows"] > 0
        grid.add_row(Text(_named(report, c["class"])), str(c["rows"]),
                     fmt.format(c["mean_loss"]) if counted else "—", f"{c['accuracy']:.1%}" if counted else "—")
    return grid


def comparison_dict(comparison, base_name: str, new_name: str) -> dict[str, Any]:
    """`xent compare --format json`."""
    base, new = comparison.base, comparison.new
    return {
        "schema_version": SCHEMA_VERSION,
        "base": {"logits": base_name, "loss": _number(base.mean if base.loss is None else base.loss),
                 "accuracy": _number(base.accuracy)},
        "new": {"logits": new_name, "loss": _number(new.mean if new.loss is None else new.loss),
                "accuracy": _number(new.accuracy)},
        "reduction": base.reduction if base.reduction != "none" else "mean",
        "difference": _number(comparison.difference),
        "interval": {"low": _number(comparison.low), "high": _number(comparison.high),
                     "confidence": comparison.confidence, "resamples": comparison.resamples,
                     "method": "paired bootstrap (Poisson)"},
        "significant": comparison.significant,
        "rows": base.rows,
        "worst_rows": [
            {"row": int(r), "target": int(base.target[r]), "base_loss": _number(base.losses[r]),
             "new_loss": _number(new.losses[r]), "change": _number(float(new.losses[r]) - float(base.losses[r]))}
            for r in comparison.worst_rows
        ],
    }


def comparison_table(comparison, base_name: str, new_name: str, precision: int, class_names=None):
    """`xent compare`: both losses, the difference and its interval, and the rows that got most worse."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    data = comparison_dict(comparison, base_name, new_name)
    fmt = f"{{:.{precision}f}}"
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    reduction = data["reduction"]
    lines.add_row(f"base loss ({reduction})", Text(f"{_fmt(fmt, data['base']['loss'])}  {base_name}"))
    lines.add_row(f"new loss ({reduction})", Text(f"{_fmt(fmt, data['new']['loss'])}  {new_name}"))
    difference = comparison.difference
    if difference == 0:
        verdict, style = "the same", ""
    else:
        better = difference < 0
        verdict = ("better" if better else "worse") + (" (significant)" if comparison.significant else " (within noise)")
        style = ("green" if better else "red") if comparison.significant else "yellow"
    lines.add_row("difference", Text(f"{difference:+.{precision}f}  new is {verdict}", style=style))
    interval = data["interval"]
    lines.add_row(
        f"{comparison.confidence:.0%} interval",
        Text(f"[{_fmt(fmt, interval['low'])}, {_fmt(fmt, interval['high'])}] "
             f"(paired bootstrap, {comparison.resamples} resamples)"),
    )
    accuracy = " → ".join(
        "—" if side["accuracy"] is None else f"{side['accuracy']:.1%}" for side in (data["base"], data["new"])
    )
    lines.add_row("accuracy", f"{accuracy} · {data['rows']} rows")
    parts: list[Any] = [lines]
    if data["worst_rows"]:
        grid = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False,
                     title="rows that got most worse", title_justify="left")
        for name in ("row", "target", "base loss", "new loss", "change"):
            grid.add_column(name, justify="left" if name == "target" else "right")
        for row in data["worst_rows"]:
            target = class_name(class_names, row["target"], with_index=True)
            grid.add_row(str(row["row"]), Text(target), _fmt(fmt, row["base_loss"]), _fmt(fmt, row["new_loss"]),
                         Text(f"+{_fmt(fmt, row['change'])}", style="red"))
        parts += [Text(""), grid]
    return Group(*parts)


def _fmt(fmt: str, value: float | None) -> str:
    return "nan" if value is None else fmt.format(value)
