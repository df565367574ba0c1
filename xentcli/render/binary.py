"""The table of a binary or multi-label batch: per row the score, p(positive),
the target, log p(target) and the loss; under it the loss, the accuracy at
the threshold and, for one score per row, ROC AUC, average precision, the
Brier score, the ECE and the reliability diagram of p(positive)."""

from __future__ import annotations

from typing import Any

from .compute import Report, bar_charts, shown_positions
from .display import fixed, printable


def table(report: Report, precision: int, limit: int, width: int = 80) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    result = report.result
    names = report.batch.class_names
    multilabel = result.scores is None

    def fmt(value: float) -> str:
        return fixed(float(value), precision)

    def target_name(value: int) -> str:
        return printable(f"{value} {names[value]}") if names and not multilabel else str(value)

    rows = Table(box=None, padding=(0, 1), show_edge=False)
    rows.add_column("row", justify="right")
    if multilabel:
        for name in ("positive", "predicted", "mean log p", "loss"):
            rows.add_column(name, justify="right")
    else:
        for name in ("target", "p(positive)", "log p(t)", "loss", "pred"):
            rows.add_column(name, justify="right" if name != "target" else "left")
    positions, hidden = shown_positions(result.rows, limit)
    for k, position in enumerate(positions):
        if hidden and k and positions[k - 1] + 1 != position:
            rows.add_row("…", *[""] * (len(rows.columns) - 1))
        loss = fmt(result.losses[position])
        if multilabel:
            rows.add_row(str(position), str(int(result.target[position])), str(int(result.pred[position])),
                         fmt(result.log_p_target[position]), loss)
            continue
        target, pred = int(result.target[position]), int(result.pred[position])
        mark = "✓" if target == pred else "✗"
        rows.add_row(str(position), target_name(target), fmt(result.scores[position]),
                     fmt(result.log_p_target[position]), loss, f"{pred} {mark}")
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    reduction = result.reduction if result.reduction != "none" else "mean"
    spec = result.spec
    if spec.focal_gamma is not None:
        balance = "" if spec.focal_alpha is None else f", α = {spec.focal_alpha:g}"
        name = f"focal loss ({reduction}, γ = {spec.focal_gamma:g}{balance})"
    else:
        name = f"loss ({reduction})"
    lines.add_row(name, Text(fmt(result.sum if reduction == "sum" else result.mean), style="bold cyan"))
    lines.add_row("sum", f"{fmt(result.sum)} / weight sum {result.weight_sum:g}")
    kind = "one score per row" if not multilabel else f"{result.classes} classes, a sigmoid each"
    lines.add_row("rows", f"{result.rows} · {result.spec.task} ({kind})" + (" · soft targets" if result.soft else ""))
    threshold = report.options.get("threshold", 0.5)
    what = "rows with every class right" if multilabel else f"p(positive) ≥ {threshold:g}"
    lines.add_row("accuracy", f"{result.accuracy:.1%} ({result.correct}/{result.rows}, {what})")
    found = None if result.binary is None else result.binary.as_dict(names)
    if found is not None and multilabel:
        lines.add_row("ranking", f"ROC AUC macro {fmt(found['roc_auc_macro'])} ({found['roc_auc_classes']} of "
                      f"{result.classes} classes) · micro {fmt(found['roc_auc_micro'])}")
        lines.add_row("", f"average precision macro {fmt(found['average_precision_macro'])} "
                      f"({found['average_precision_classes']} of {result.classes} classes) · "
                      f"micro {fmt(found['average_precision_micro'])}")
        lines.add_row("elements", f"{found['element_accuracy']:.1%} of (row, class) pairs right · "
                      f"{found['positives']} positive")
    elif found is not None:
        lines.add_row("ranking", f"ROC AUC {fmt(found['roc_auc'])} · average precision {fmt(found['average_precision'])}"
                      f" · {found['positives']} positive")
        lines.add_row("calibration", f"Brier {fmt(found['brier'])} · ECE {fmt(found['ece'])}")
    lines.add_row("computed", Text(printable(f"{result.backend} · {result.device} · {result.dtype} · {result.convention}")))
    if found is not None and found.get("by_class"):
        return Group(rows, Text(""), lines, Text(""), _by_class(found["by_class"], fmt))
    if found is None or not found.get("reliability"):
        return Group(rows, Text(""), lines)
    calibration = [
        (f"p {b['low']:.2f}–{b['high']:.2f}", b["positive_rate"],
         f"positive {b['positive_rate']:.2f} · mean p {b['mean_p']:.2f} · n={b['rows']}")
        for b in found["reliability"]
    ]
    return Group(rows, Text(""), lines, Text(""), bar_charts([("calibration", calibration)], width))


BY_CLASS_LIMIT = 50


def _by_class(classes: list[dict[str, Any]], fmt) -> Any:
    """A multi-label batch per class: positives, predicted, loss, ROC AUC and
    average precision (the most frequent classes first beyond BY_CLASS_LIMIT)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    shown = classes if len(classes) <= BY_CLASS_LIMIT else sorted(classes, key=lambda c: -c["positives"])[:BY_CLASS_LIMIT]
    more = len(classes) - len(shown)
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False,
                 caption=f"… {more} more classes" if more else None)
    for name in ("class", "positive", "predicted", "mean loss", "ROC AUC", "avg precision"):
        grid.add_column(name, justify="left" if name == "class" else "right")
    for c in shown:
        label = f"{c['class']} {c['name']}" if c["name"] is not None else str(c["class"])
        grid.add_row(Text(printable(label)), str(c["positives"]), str(c["predicted"]), fmt(c["loss"]),
                     fmt(c["roc_auc"]), fmt(c["average_precision"]))
    return grid
