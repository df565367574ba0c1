"""Renderers: a computed loss -> the rich table, JSON, CSV/TSV, YAML or a bare value.

The machine formats are written with the standard library (and PyYAML),
never through rich; rich is imported only to draw the table.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..engine import Result
from ..readers import Batch, class_name
from .display import abbreviate, bar, fixed, json_number, printable, shortest_distinct, signed

try:
    from .. import _format
except ImportError:  # built without a C compiler: json.dumps and repr write the rows
    _format = None

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
    sequences: Any = None  # engine.sequences.Sequences, with --per-sequence

    def index(self, position: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(position, self.result.shape))

    @property
    def extra_dims(self) -> bool:
        return len(self.result.shape) > 1


def as_dict(report: Report, per_row: bool) -> dict[str, Any]:
    """The JSON object of SPEC §5 (schema version 1); the writers stream per_row instead."""
    result = report.result
    loss = result.loss
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "loss": None if loss is None else json_number(loss),
        "nan": loss is not None and math.isnan(loss),
        "inf": loss is not None and math.isinf(loss),
        "reduction": result.reduction,
        "sum": json_number(result.sum),
        "mean": json_number(result.mean),
        "weight_sum": json_number(result.weight_sum),
        "rows": result.rows,
        "classes": result.classes,
        "ignored": result.ignored,
        "accuracy": json_number(result.accuracy),
        "perplexity": json_number(result.perplexity),
        "bits": json_number(result.bits),
        "soft_labels": result.soft,
        "task": result.spec.task,
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
        data["metrics"] = _metrics(result.metrics, report.batch.class_names)
    if result.binary is not None:
        data["metrics"] = _clean(result.binary.as_dict(report.batch.class_names))
    if "z_loss" in result.parts:
        data["z_loss"] = {"coefficient": result.spec.z_loss, "sum": json_number(result.parts["z_loss"]),
                          "mean": json_number(result.part_mean("z_loss"))}
        data["cross_entropy"] = json_number(result.cross_entropy_mean)
    if report.sequences is not None:
        data["sequences"] = len(report.sequences.tokens)
        data["token_mean"] = json_number(result.mean)
        data["sequence_mean"] = json_number(report.sequences.mean)
        data["per_sequence"] = _clean(report.sequences.rows())
    if report.files:
        data["files"] = [{k: json_number(v) if isinstance(v, float) else v for k, v in f.items()} for f in report.files]
    if per_row:
        data["per_row"] = list(_per_row(report))
    return data


def _clean(value: Any) -> Any:
    """Numbers as JSON takes them (NaN and infinities: null), through dicts and lists."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return json_number(value)
    return value


def _metrics(metrics, class_names: Sequence[str] | None) -> dict[str, Any]:
    """The metrics, with only the histogram and reliability bins that hold rows."""
    return _clean(
        {
            "top_k": metrics.top_k,
            "top_k_accuracy": metrics.top_k_accuracy,
            "mean_entropy": metrics.mean_entropy,
            "ece": metrics.ece,
            "reliability": metrics.reliability(),
            "loss_histogram": [b for b in metrics.histogram() if b["rows"]],
            "by_class": metrics.by_class(class_names),
        }
    )


def _inputs(report: Report) -> dict[str, Any]:
    if report.files:
        return {"logits": [f["logits"] for f in report.files], "labels": [f["labels"] for f in report.files]}
    return {"logits": report.batch.logits_name, "labels": report.batch.labels_name}


def _per_row(report: Report, start: int = 0, stop: int | None = None):
    """The JSON's per_row objects of rows start..stop-1."""
    stop = report.result.rows if stop is None else stop
    columns = _numbers(report, start, stop)
    for offset, values in enumerate(zip(*(column.tolist() for column in columns.values()))):
        row: dict[str, Any] = {
            name: json_number(value) if isinstance(value, float) else value for name, value in zip(columns, values)
        }
        if report.extra_dims:
            row["index"] = list(report.index(start + offset))
        yield row


STREAM_ROWS = 4096  # per-row outputs are written this many rows at a time, never built whole


def _numbers(report: Report, start: int, stop: int) -> dict[str, np.ndarray]:
    """The per-row numbers of rows start..stop-1, in the JSON's per_row order, as int64 and float64."""
    result = report.result
    with np.errstate(over="ignore"):
        p_target = np.exp(result.log_p_target[start:stop])
    columns = {
        "row": np.arange(start, stop, dtype=np.int64),
        "target": np.asarray(result.target[start:stop], dtype=np.int64),
        "p_target": np.asarray(p_target, dtype=np.float64),
        "log_p_target": np.asarray(result.log_p_target[start:stop], dtype=np.float64),
        "loss": np.asarray(result.losses[start:stop], dtype=np.float64),
        "pred": np.asarray(result.pred[start:stop], dtype=np.int64),
    }
    if result.scores is not None:
        columns["p_positive"] = np.asarray(result.scores[start:stop], dtype=np.float64)
    return columns


def _json_lines(report: Report) -> Iterator[str]:
    """The per_row objects, one compact JSON object a line, a chunk of rows at a time:
    written by the C writer (_format.c: floats as repr writes them, as json.dumps
    does) where it is built and the rows have no extra dimensions, else by json.dumps."""
    for start in range(0, report.result.rows, STREAM_ROWS):
        stop = min(start + STREAM_ROWS, report.result.rows)
        if _format is not None and not report.extra_dims:
            columns = _numbers(report, start, stop)
            names = list(columns)
            pieces = (f'{{"{names[0]}": ', *(f', "{name}": ' for name in names[1:]), "}\n")
            yield _format.rows(tuple(columns.values()), pieces, "null")
        else:
            yield "".join(json.dumps(row, allow_nan=False) + "\n" for row in _per_row(report, start, stop))


def to_json(report: Report, per_row: bool) -> Iterator[str]:
    """The JSON object, in pieces: per_row (one compact object a line) is streamed."""
    data = as_dict(report, per_row=False)
    if not (per_row or report.result.reduction == "none"):
        yield json.dumps(data, indent=2, allow_nan=False) + "\n"
        return
    head = json.dumps(data, indent=2, allow_nan=False)
    yield head[:-2] + ',\n  "per_row": [\n'
    first = True
    for lines in _json_lines(report):
        text = "    " + lines[:-1].replace("\n", ",\n    ")
        yield text if first else ",\n" + text
        first = False
    yield "\n  ]\n}\n"


def to_yaml(report: Report, per_row: bool) -> Iterator[str]:
    """The same object as YAML; per_row rows are flow mappings (JSON objects), streamed."""
    import yaml

    yield yaml.safe_dump(as_dict(report, per_row=False), sort_keys=False, allow_unicode=True)
    if per_row or report.result.reduction == "none":
        yield "per_row:\n"
        for lines in _json_lines(report):
            yield "- " + lines[:-1].replace("\n", "\n- ") + "\n"


def to_csv(report: Report, delimiter: str = ",") -> Iterator[str]:
    """The per-row table, header first, columns named as the JSON per_row keys; streamed.
    With --per-sequence, a line per sequence instead (the JSON's per_sequence keys)."""
    import csv

    if report.sequences is not None:
        keys = ("sequence", "tokens", "loss", "perplexity")
        yield delimiter.join(keys) + "\n"
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
        for row in report.sequences.rows():
            writer.writerow(["" if math.isnan(v) else repr(v) if isinstance(v, float) else v for v in row.values()])
        yield buffer.getvalue()
        return

    keys = PER_ROW_KEYS + (("index",) if report.extra_dims else ()) + (("p_positive",) if report.result.scores is not None else ())
    yield delimiter.join(keys) + "\n"
    for start in range(0, report.result.rows, STREAM_ROWS):
        stop = min(start + STREAM_ROWS, report.result.rows)
        if _format is not None and not report.extra_dims:
            columns = _numbers(report, start, stop)
            yield _format.rows(tuple(columns.values()), ("", *[delimiter] * (len(columns) - 1), "\n"), "")
            continue
        columns = _csv_columns(report, start, stop)
        yield "".join(delimiter.join(fields) + "\n" for fields in zip(*(columns[key] for key in keys)))


def _csv_columns(report: Report, start: int, stop: int) -> dict[str, list[str]]:
    """The per-row columns of rows start..stop-1 as CSV cells, a column at a time: the
    same cells as the JSON's per_row values (repr of each float, empty for NaN and inf)."""
    columns = {}
    for name, values in _numbers(report, start, stop).items():
        cells = list(map(repr if values.dtype.kind == "f" else str, values.tolist()))
        if values.dtype.kind == "f":
            for k in np.flatnonzero(~np.isfinite(values)):
                cells[k] = ""
        columns[name] = cells
    if report.extra_dims:
        index = np.unravel_index(np.arange(start, stop), report.result.shape)
        columns["index"] = [" ".join(map(str, position)) for position in zip(*(axis.tolist() for axis in index))]
    return columns


def to_jsonl(report: Report) -> Iterator[str]:
    """JSON Lines: one compact object a row (the JSON's per_row objects), or a sequence
    with --per-sequence, streamed a chunk of rows at a time."""
    if report.sequences is not None:
        yield "".join(json.dumps(_clean(row), allow_nan=False) + "\n" for row in report.sequences.rows())
        return
    yield from _json_lines(report)


def to_value(report: Report) -> Iterator[str]:
    """The reduced loss alone (one loss per line for reduction none)."""
    result = report.result
    if result.loss is not None:
        yield f"{result.loss!r}\n"
        return
    for start in range(0, result.rows, STREAM_ROWS):
        yield "".join(f"{float(v)!r}\n" for v in result.losses[start : start + STREAM_ROWS])


# format -> writer(report, per_row): the machine formats of `xent compute` (the table is drawn by `table`)
WRITERS = {
    "json": to_json,
    "yaml": to_yaml,
    "jsonl": lambda report, per_row: to_jsonl(report),
    "csv": lambda report, per_row: to_csv(report, ","),
    "tsv": lambda report, per_row: to_csv(report, "\t"),
    "value": lambda report, per_row: to_value(report),
}


def shown_positions(rows: int, limit: int) -> tuple[list[int], int]:
    """The positions the table shows (head and tail) and how many it skips."""
    if limit <= 0 or rows <= limit:
        return list(range(rows)), 0
    head = (limit + 1) // 2
    tail = limit - head
    return list(range(head)) + list(range(rows - tail, rows)), rows - limit


@dataclass(frozen=True)
class Layout:
    """How the per-row table fits its width."""

    all_classes: bool  # a column per class, or p(target) and the top 3
    with_index: bool = True  # target and pred as "2 bird", else "bird"
    tight: bool = False  # one space between the columns, not two
    name_length: int | None = None  # class names cut to this length (None: in full)
    log_p: bool = True  # the log p(t) column (the log of the highlighted p(target))
    decimals: int | None = None  # decimals of the class probabilities (None: --precision)
    indexed: bool = False  # classes by index (p(2)), their names in a line under the table


def layouts(report: Report, precision: int) -> list[Layout]:
    """The table's layouts, from the widest to the most compact; the first that fits is drawn.

    Up to 10 classes each get a column. To fit, in turn: the target and pred
    cells drop the class index, the columns close up to one space, the
    class names are cut to a common length (ending in `…`, never so short
    that two look alike), the log p(t) column goes, the class columns lose
    decimals (down to 2), and last the classes are shown by index with
    their names in a line under the table. Beyond that, and for more than
    10 classes, p(target) and the top 3 are shown, fitted the same way.
    """
    names = _names(report)

    def fitted(first: Layout) -> list[Layout]:
        steps = [first]
        if names:
            steps.append(replace(first, with_index=False))
        steps.append(replace(steps[-1], tight=True))
        if names:
            longest, shortest = max(map(len, names)), shortest_distinct(names)
            steps += [replace(steps[-1], name_length=length) for length in range(longest - 1, shortest - 1, -1)]
        return steps

    found: list[Layout] = []
    if report.result.classes <= MAX_CLASS_COLUMNS:
        found = fitted(Layout(all_classes=True))
        found.append(replace(found[-1], log_p=False))
        found += [replace(found[-1], decimals=decimals) for decimals in range(precision - 1, 1, -1)]
        if names:
            found.append(replace(found[-1], name_length=None, indexed=True))
    return found + fitted(Layout(all_classes=False))


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
    A row is always one line: the table takes the first of `layouts` that
    fits in `width`, else the last, with the top 3 cut short.
    """
    from rich.console import Group

    return Group(*table_parts(report, [(shown, rows, probabilities)], hidden, precision, width))


def table_parts(
    report: Report, chunks, hidden: int, precision: int, width: int = 80, steady: bool = False
) -> Iterator[Any]:
    """The table as a sequence of renderables: the rows a chunk at a time (each
    chunk is (shown positions, their Result, their softmax)), then the summary.

    With one chunk this is the table. With many (``--rows 0`` on millions of
    rows: `steady`) every chunk takes the first one's layout and columns keep
    widths that fit any row, so the chunks line up and nothing is built whole."""
    from rich.console import Console
    from rich.text import Text

    measure = Console(width=10_000).measure
    layout = None
    for shown, rows, probabilities in chunks:
        if layout is None:
            for layout in layouts(report, precision):
                grid = _rows_table(report, shown, rows, probabilities, hidden, precision, layout, steady)
                if measure(grid).maximum <= width:  # its natural width
                    break
        else:
            grid = _rows_table(report, shown, rows, probabilities, hidden, precision, layout, steady, header=False)
        yield grid
    if layout is not None and layout.indexed:
        names = _names(report) or []
        yield Text("classes: " + " · ".join(f"{c} {name}" for c, name in enumerate(names)), style="dim")
    yield Text("")
    yield summary(report, precision, width)


def _rows_table(
    report: Report, shown, rows: Result, probabilities, hidden: int, precision: int, layout: Layout,
    steady: bool = False, header: bool = True,
):
    """The per-row table: every class's probability, or p(target) and the top 3.
    `steady` widens each column to what any of its cells can need, so that
    tables of consecutive chunks of rows line up; `header` shows the headers."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    result = report.result
    names = None if layout.indexed else _names(report)

    def name(c: int) -> str:
        if names is None or not 0 <= c < len(names):
            return str(c)
        return names[c] if layout.name_length is None else abbreviate(names[c], layout.name_length)

    def labelled(c: int) -> str:  # the target and pred cells
        return f"{c} {name(c)}" if layout.with_index and names is not None else name(c)

    def number(value: float) -> str:
        return fixed(value, precision)

    decimals = precision if layout.decimals is None else layout.decimals
    grid = Table(
        header_style="bold",
        show_header=header,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 0 if layout.tight else 1, 0, 0),
        pad_edge=False,
        caption=f"… {hidden} rows not shown (--rows 0 shows all) …" if hidden else None,
        caption_justify="left",
    )
    # Text, never markup, and escaped: class names come from the user's files.
    columns: list[tuple[str, str]] = [("row" if not report.extra_dims else "index", "right"), ("target", "left")]
    if layout.all_classes:
        columns += [(f"p({name(c)})", "right") for c in range(result.classes)]
    else:
        columns += [("p(t)", "right"), (f"top {TOP_K}", "left")]
    if layout.log_p:
        columns.append(("log p(t)", "right"))
    columns += [("loss", "right"), ("pred", "left")]
    widest = {}
    if steady:  # what any row's cell can need, whatever the chunk
        label = max(len(name(c)) + (len(str(c)) + 1 if layout.with_index and names is not None else 0)
                    for c in range(result.classes))
        digits = len(str(result.rows - 1)) if not report.extra_dims else len(",".join(map(str, result.shape)))
        number_width = len(fixed(-99999.0, precision))
        widest = {"row": digits, "index": digits, "target": max(label, len("ignored")) + (7 if result.soft else 0),
                  "p(t)": number_width, "log p(t)": number_width, "loss": number_width, "pred": label + 2}
    for title, justify in columns:
        # Only the top 3 may narrow (its cells then end in …): no cell ever wraps.
        grid.add_column(
            Text(title, no_wrap=True), justify=justify, no_wrap=title != f"top {TOP_K}",
            min_width=widest.get(title, len(title) if steady else None),
        )

    head = len(shown) - len(shown) // 2  # shown_positions puts the extra row at the head
    for k, position in enumerate(shown):
        if hidden and k == head:
            grid.add_row(*(["⋮"] * len(grid.columns)), style="dim")
        target = int(rows.target[k])
        ignored = bool(rows.ignored_mask[k])
        pred = int(rows.pred[k])
        p = probabilities[k]
        label = ",".join(str(i) for i in report.index(position)) if report.extra_dims else str(position)
        target_cell = "ignored" if ignored else labelled(target)
        if result.soft and not ignored:
            target_cell += " (soft)"
        cells: list[Any] = [label, Text(target_cell)]
        if layout.all_classes:
            for c in range(result.classes):
                style = "bold reverse" if c == target and not ignored else ""
                cells.append(Text(fixed(p[c], decimals), style=style))
        else:
            cells.append("—" if ignored else number(p[target]))
            top = np.argsort(-p, kind="stable")[:TOP_K]
            ranked = "  ".join(f"{name(int(c))}:{number(p[c])}" for c in top)
            cells.append(Text(ranked, no_wrap=True, overflow="ellipsis"))
        if layout.log_p:
            cells.append("—" if ignored else number(rows.log_p_target[k]))
        cells.append(number(rows.losses[k]))
        mark = Text("", style="dim") if ignored else (
            Text(" ✓", style="green") if pred == target else Text(" ✗", style="red")
        )
        cells.append(Text(labelled(pred)) + mark)
        grid.add_row(*cells)
    if hidden and head == len(shown):
        grid.add_row(*(["⋮"] * len(grid.columns)), style="dim")
    return grid


HTML_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="UTF-8">
<title>{title}</title>
<style>
{{stylesheet}}
body {{{{
    color: {{foreground}};
    background-color: {{background}};
}}}}
</style>
</head>
<body>
    <pre style="font-family:Menlo,'DejaVu Sans Mono',consolas,'Courier New',monospace"><code style="font-family:inherit">{{code}}</code></pre>
</body>
</html>
"""


def picture_title(report: Report) -> str:
    """The title of the saved SVG/HTML: `xent compute: <logits file>`, escaped."""
    what = report.batch.logits_name
    if report.files:
        what = f"{report.files[0]['logits']} and {len(report.files) - 1} more files"
    return printable(f"xent compute: {what}")


def export_picture(drawing, kind: str, title: str) -> str:
    """The drawing, colours and all, as an SVG image or an HTML page named `title`."""
    import html

    from rich.console import Console

    console = Console(file=io.StringIO(), record=True, width=100, force_terminal=True, color_system="truecolor")
    console.print(drawing)
    if kind == "svg":
        return console.export_svg(title=title)
    page = HTML_PAGE.format(title=html.escape(title).replace("{", "{{").replace("}", "}}"))
    return console.export_html(code_format=page)


def files_table(report: Report, precision: int):
    """For several files: one line per file, and the summary of them all."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False)
    for name, justify in (("logits", "left"), ("labels", "left"), ("rows", "right"), ("ignored", "right"),
                          ("accuracy", "right"), ("loss (mean)", "right")):
        grid.add_column(name, justify=justify)
    for f in report.files:
        counted = f["rows"] - f["ignored"]
        accuracy = f"{f['correct'] / counted:.1%}" if counted else "—"
        grid.add_row(Text(printable(f["logits"])), Text(printable(f["labels"])), str(f["rows"]), str(f["ignored"]),
                     accuracy, fixed(f["mean"], precision))
    return Group(grid, Text(""), summary(report, precision))


def _names(report: Report) -> list[str] | None:
    """The class names as shown: escaped (they come from the user's files)."""
    names = report.batch.class_names
    return [printable(n) for n in names] if names else None


def _named(report: Report, index: int) -> str:
    """A class as "2 bird" (its index alone when it has no name), escaped."""
    return printable(class_name(report.batch.class_names, index, with_index=True))


def summary(report: Report, precision: int, width: int = 80):
    """The reduced loss, the counts and metrics around it, and the pictures."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    result = report.result
    metrics = result.metrics

    def fmt(value: float) -> str:
        return fixed(value, precision)

    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    reduction = result.reduction if result.reduction != "none" else "mean"
    headline = result.sum if reduction == "sum" else result.mean
    lines.add_row(
        f"loss ({reduction})",
        Text(fmt(headline), style="bold cyan") + Text(f"  ({fmt(result.bits)} bits per row, mean)"),
    )
    if reduction != "sum":  # a mean (torch's, or Keras's mean-with-sample-weight)
        lines.add_row("sum", f"{fmt(result.sum)} / weight sum {result.weight_sum:g}")
    else:
        lines.add_row("mean", fmt(result.mean))
    if "z_loss" in result.parts:
        z = result.parts["z_loss"] if reduction == "sum" else result.part_mean("z_loss")
        lines.add_row("of which", f"cross-entropy {fmt(headline - z)} + z-loss {fmt(z)} "
                      f"({result.spec.z_loss:g} · logsumexp², PaLM)")
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
        perplexity += f" · entropy {fmt(metrics.mean_entropy)} nats · ECE {fmt(metrics.ece)}"
    lines.add_row("perplexity", perplexity)
    device = f"{result.device} ({result.device_name})" if result.device_name else result.device
    lines.add_row("computed", Text(printable(f"{result.backend} · {device} · {result.dtype}")))
    moved = [(name, where) for name, where in report.options.get("from", {}).items() if where != "default"]
    for k, (name, where) in enumerate(moved):
        shown = f"{name} {report.options[name]} ({_nearby(where)})"
        lines.add_row("settings" if k == 0 else "", Text(printable(shown), overflow="fold"))
    parts: list[Any] = [lines]
    if metrics is not None and counted:
        parts += [Text(""), pictures(metrics, precision, width)]
        if metrics.class_count is not None:
            parts += [Text(""), by_class_table(report, precision)]
    return Group(*parts)


BAR = 24
LABEL_WIDTH = 12


def _nearby(where: str) -> str:
    """A file:line as short as it can be: relative to the current folder when that is shorter."""
    if not where.startswith(os.sep):
        return where
    relative = os.path.relpath(where)
    return relative if len(relative) < len(where) else where


def pictures(metrics, precision: int, width: int = 80):
    """Per-row losses as a histogram, and calibration as a reliability diagram."""
    bins = [b for b in metrics.histogram() if b["rows"]]
    loss_rows = [
        (f"{b['low']:g}–{'∞' if b['high'] is None else format(b['high'], 'g')}", b["rows"] / max(c["rows"] for c in bins),
         str(b["rows"]))
        for b in bins
    ]
    calibration_rows = [
        (f"p {b['low']:.2f}–{b['high']:.2f}", b["accuracy"],
         f"acc {b['accuracy']:.2f} · conf {b['confidence']:.2f} · n={b['rows']}")
        for b in metrics.reliability()
    ]
    return bar_charts([("loss per row", loss_rows), ("calibration", calibration_rows)], width)


def bar_charts(charts: list[tuple[str, list[tuple[str, float, str]]]], width: int = 80):
    """Titled bar charts, one line per (span, share in [0, 1], text), their bars
    aligned: 24 cells, fewer (down to 8) when that keeps a line within `width`."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    everything = [line for _, lines in charts for line in lines]
    widest = max(len(low) for low, _, _ in everything) + max(len(text) for _, _, text in everything)
    bar_width = max(8, min(BAR, width - LABEL_WIDTH - widest - 3))

    def grid(title: str, lines) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold", min_width=LABEL_WIDTH)
        table.add_column(justify="right")
        table.add_column(style="cyan", min_width=bar_width)
        table.add_column()
        for k, (span, share, text) in enumerate(lines):
            table.add_row(title if k == 0 else "", span, bar(share, bar_width), text)
        return table

    parts = []
    for title, lines in charts:
        parts += [Text(""), grid(title, lines)] if parts else [grid(title, lines)]
    return Group(*parts)


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
    for c in shown:
        counted = c["rows"] > 0
        grid.add_row(Text(_named(report, c["class"])), str(c["rows"]),
                     fixed(c["mean_loss"], precision) if counted else "—", f"{c['accuracy']:.1%}" if counted else "—")
    return grid


def comparison_dict(
    comparison, base_name: str, new_name: str, inputs: tuple[str, str] = ("logits", "logits")
) -> dict[str, Any]:
    """`xent compare --format json`; `inputs` says what each model's file holds."""
    base, new = comparison.base, comparison.new
    return {
        "schema_version": SCHEMA_VERSION,
        "base": {"logits": base_name, "input": inputs[0], "loss": json_number(base.loss), "accuracy": json_number(base.accuracy)},
        "new": {"logits": new_name, "input": inputs[1], "loss": json_number(new.loss), "accuracy": json_number(new.accuracy)},
        "reduction": base.reduction,
        "difference": json_number(comparison.difference),
        "interval": {"low": json_number(comparison.low), "high": json_number(comparison.high),
                     "confidence": comparison.confidence, "resamples": comparison.resamples,
                     "method": "paired bootstrap (Poisson)"},
        "significant": comparison.significant,
        "rows": base.rows,
        "worst_rows": [
            {"row": int(r), "target": int(base.target[r]), "base_loss": json_number(base.losses[r]),
             "new_loss": json_number(new.losses[r]), "change": json_number(float(new.losses[r]) - float(base.losses[r]))}
            for r in comparison.worst_rows
        ],
    }


def comparison_csv(comparison) -> str:
    """`xent compare --format csv`: per row, both losses and the change (new - base)."""
    import csv

    base, new = comparison.base, comparison.new
    extra_dims = len(base.shape) > 1
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("row", "target", "base_loss", "new_loss", "change") + (("index",) if extra_dims else ()))
    change = new.losses.astype(np.float64) - base.losses.astype(np.float64)
    for position in range(base.rows):
        values = [position, int(base.target[position]), float(base.losses[position]), float(new.losses[position]),
                  float(change[position])]
        if extra_dims:
            values.append(" ".join(str(int(i)) for i in np.unravel_index(position, base.shape)))
        writer.writerow([repr(v) if isinstance(v, float) else v for v in values])
    return buffer.getvalue()


def comparison_table(
    comparison, base_name: str, new_name: str, precision: int, class_names=None,
    inputs: tuple[str, str] = ("logits", "logits"),
):
    """`xent compare`: both losses, the difference and its interval, and the rows that got most worse."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    data = comparison_dict(comparison, base_name, new_name, inputs)
    if inputs[0] != inputs[1]:  # say what each file holds when they differ
        base_name, new_name = f"{base_name} ({inputs[0]})", f"{new_name} ({inputs[1]})"

    def fmt(value: float | None) -> str:
        return "nan" if value is None else fixed(value, precision)

    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    reduction = data["reduction"]
    # Escaped: the names are file names, the targets' names come from the files.
    lines.add_row(f"base loss ({reduction})", Text(f"{fmt(data['base']['loss'])}  {printable(base_name)}"))
    lines.add_row(f"new loss ({reduction})", Text(f"{fmt(data['new']['loss'])}  {printable(new_name)}"))
    difference = comparison.difference
    if difference == 0:
        verdict, style = "the same", ""
    else:
        better = difference < 0
        verdict = ("better" if better else "worse") + (" (significant)" if comparison.significant else " (within noise)")
        style = ("green" if better else "red") if comparison.significant else "yellow"
    lines.add_row("difference", Text(f"{signed(difference, precision)}  new is {verdict}", style=style))
    interval = data["interval"]
    lines.add_row(
        f"{comparison.confidence:.0%} interval",
        Text(f"[{fmt(interval['low'])}, {fmt(interval['high'])}] "
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
            target = printable(class_name(class_names, row["target"], with_index=True))
            change = "nan" if row["change"] is None else signed(row["change"], precision)
            grid.add_row(str(row["row"]), Text(target), fmt(row["base_loss"]), fmt(row["new_loss"]),
                         Text(change, style="red"))
        parts += [Text(""), grid]
    return Group(*parts)


def _comparison_json(comparison, base: str, new: str, inputs) -> str:
    return json.dumps(comparison_dict(comparison, base, new, inputs), indent=2) + "\n"


# format -> writer(comparison, base name, new name, input kinds): the machine formats of `xent compare`
COMPARE_WRITERS = {
    "json": _comparison_json,
    "csv": lambda comparison, base, new, inputs: comparison_csv(comparison),
    "value": lambda comparison, base, new, inputs: f"{comparison.difference!r}\n",
}
