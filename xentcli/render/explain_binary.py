"""Renderers for `xent explain` of a binary or multi-label row: a rich table,
JSON and Markdown, sharing their content (the per-class lines of a
multi-label row, the numbered steps, the checks) built once as text."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..engine.explain_binary import BinaryExplanation
from .display import bar, fixed, json_vector, markdown_steps, markdown_table, numbered, printable
from .explain import in_the_batch, in_the_batch_json

MAX_CLASS_ROWS = 12
BAR_WIDTH = 20


def title(e: BinaryExplanation) -> str:
    if e.classes == 1:
        y = float(e.target[0])
        what = f"target {fixed(y, 4).rstrip('0').rstrip('.')}"
        if e.class_names and y in (0.0, 1.0):
            what += f" {e.class_names[int(y)]}"
    else:
        what = f"{int((e.target >= 0.5).sum())} of {e.classes} classes positive"
    return printable(f"row {e.row} of {e.rows} · {e.where} · {e.task} · {what}")


def costliest(e: BinaryExplanation) -> list[int]:
    """The classes in order of their loss, highest first."""
    return [int(c) for c in np.argsort(-e.elements, kind="stable")]


def class_table(e: BinaryExplanation, precision: int) -> tuple[list[str], list[list[str]], str | None]:
    """(header, rows, note) of a multi-label row's classes, the costliest first."""
    def f(value: float) -> str:
        return fixed(value, precision)

    header = ["class", "logit x" if e.input == "logits" else "p given", "p = σ(x)" if e.input == "logits" else "p",
              "", "target y", "loss"]
    order = costliest(e)
    shown = order[:MAX_CLASS_ROWS]
    rows = [
        [printable(e.class_name(c)), f(e.scores[c]), f(e.p[c]), bar(float(e.p[c]), BAR_WIDTH), f(e.target[c]),
         f(e.elements[c])]
        for c in shown
    ]
    note = None
    if len(order) > len(shown):
        rest = float(e.elements[order[len(shown):]].sum())
        note = f"… {len(order) - len(shown)} more classes, costing {f(rest)} together"
    return header, rows, note


def steps(e: BinaryExplanation, precision: int) -> list[str]:
    """The derivation, one numbered step a line: the element's (the costliest
    class's, for a multi-label row), then how the row's loss is made of them."""
    def f(value: float) -> str:
        return fixed(value, precision)

    c = costliest(e)[0]
    lines = []
    x, y = float(e.scores[c]), float(e.y[c])
    if e.smoothed is not None:
        lines.append(f"label smoothing ε = {e.label_smoothing:g} (Keras): y′ = y·(1 - ε) + ε/2 = {f(y)}")
    if e.stable:
        lines += [
            f"|x| = {f(e.abs_scores[c])}; e^-|x| = {f(e.exp_neg_abs[c])} (≤ 1: it cannot overflow); "
            f"log1p(e^-|x|) = {f(e.log1p_term[c])}",
            f"log σ(x) = min(x, 0) - log1p(e^-|x|) = {f(min(x, 0.0))} - {f(e.log1p_term[c])} = {f(e.log_p[c])}",
            f"log σ(-x) = min(-x, 0) - log1p(e^-|x|) = {f(min(-x, 0.0))} - {f(e.log1p_term[c])} = {f(e.log_q[c])}",
            f"p = σ(x) = e^(log σ(x)) = {f(e.p[c])}",
        ]
        log_p, log_q = "log σ(x)", "log σ(-x)"
    else:
        if e.input == "logits":
            lines.append(f"p = σ(x) = 1 / (1 + e^-x) = {f(e.p[c])} ({_why_sigma_first(e)})")
        lines.append(_clip_step(e, c, f))
        log_p, log_q = "log p", "log(1 - p)"
    y_name = "y′" if e.smoothed is not None else "y"
    if e.pos_weight is not None:
        pw = float(e.pos_weight[c])
        formula = f"-[pw·{y_name}·{log_p} + (1 - {y_name})·{log_q}] with pos_weight pw = {f(pw)}"
    else:
        formula = f"-[{y_name}·{log_p} + (1 - {y_name})·{log_q}]"
    cross_entropy = float(e.cross_entropy[c])
    pw_times = "" if e.pos_weight is None else f"{f(e.pos_weight[c])}·"
    plugged = f"-[{pw_times}{f(y)}·({f(e.log_p[c])}) + {f(1 - y)}·({f(e.log_q[c])})]"
    lines.append(f"cross-entropy = {formula} = {plugged} = {f(cross_entropy)}")
    if e.focal_factor is not None:
        p_t = y * float(e.p[c]) + (1 - y) * (1 - float(e.p[c]))
        lines.append(f"p_t = {y_name}·p + (1 - {y_name})·(1 - p) = {f(p_t)}: the probability given to the target")
        factor = f"(1 - p_t)^γ = {f((1 - p_t) ** e.focal_gamma)} with γ = {e.focal_gamma:g}"
        if e.focal_alpha is not None:
            alpha_t = e.focal_alpha * y + (1 - e.focal_alpha) * (1 - y)
            factor += f"; × α_t = α·{y_name} + (1 - α)·(1 - {y_name}) = {f(alpha_t)} with α = {e.focal_alpha:g}"
        lines.append(f"focal factor {factor}: {f(e.focal_factor[c])}")
        lines.append(f"focal loss = {f(e.focal_factor[c])} × {f(cross_entropy)} = {f(cross_entropy * float(e.focal_factor[c]))}")
    if e.class_weight is not None:
        lines.append(f"× the class weight w = {f(e.class_weight[c])}: {f(e.elements[c])}")
    if e.classes > 1:
        how = "the mean over" if e.convention == "keras" else "the sum over"
        lines.append(f"the row's loss is {how} its {e.classes} classes (the table): {f(_unscaled_row(e))}")
    if e.row_weight is not None:
        lines.append(f"× the class weight of the row's class, w[y] = {f(e.row_weight)} (Keras' class_weight)")
    if e.sample_weight is not None:
        lines.append(f"× the row's sample weight {f(e.sample_weight)}")
    if e.row_weight is not None or e.sample_weight is not None:
        lines.append(f"loss = {f(e.loss)}")
    return lines


def _unscaled_row(e: BinaryExplanation) -> float:
    return float(e.elements.mean() if e.convention == "keras" else e.elements.sum())


def _why_sigma_first(e: BinaryExplanation) -> str:
    if e.convention == "sklearn":
        return "scikit-learn's log_loss takes probabilities"
    return "Keras' focal loss applies the sigmoid first, then its loss of probabilities"


def _clip_step(e: BinaryExplanation, c: int, f) -> str:
    logs = f"log p = {f(e.log_p[c])}, log(1 - p) = {f(e.log_q[c])}"
    if e.convention == "torch":
        return f"{logs}, each clamped at -100 (torch's binary_cross_entropy)"
    if e.convention == "keras":
        return f"p clipped to [1e-7, 1 - 1e-7] (Keras' epsilon), then {logs}"
    return f"p clipped to [eps, 1 - eps] (the dtype's eps, as scikit-learn's log_loss), then {logs}"


def intro(e: BinaryExplanation) -> str | None:
    """What the steps walk through, for a multi-label row (its costliest class)."""
    if e.classes == 1:
        return None
    return f"the costliest class, {printable(e.class_name(costliest(e)[0]))}, step by step:"


def notes(e: BinaryExplanation, precision: int) -> list[str]:
    """The checks and the row's place in the batch (unnumbered)."""
    def f(value: float) -> str:
        return fixed(value, precision)

    route = "(1 - y)·x + log1p(e^-|x|) + max(-x, 0)" if e.stable else "log(1 - p) as log1p(-p)"
    checks = [f"second route, {route} = {f(e.second_route)}"]
    if e.torch_loss is not None:
        name = "binary_cross_entropy_with_logits" if e.input == "logits" else "binary_cross_entropy"
        checks.append(f"torch {name} (this row) = {f(e.torch_loss)}")
    checks.append(f"xent compute = {f(e.engine_loss)}")
    denominator = "" if e.reduction == "sum" else f"{e.weight_sum:g} ({_denominator(e)})"
    return ["check: " + " · ".join(checks), in_the_batch(e, f, denominator)]


def _denominator(e: BinaryExplanation) -> str:
    if e.convention == "sklearn" or e.reduction == "mean-with-sample-weight":
        return "the sum of the weights"
    if e.classes > 1 and e.convention != "keras":
        return "rows × classes: every element counts"
    return "the rows"


def table(e: BinaryExplanation, precision: int):
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(title(e), style="bold"), Text("")]
    if e.classes > 1:
        header, rows, note = class_table(e, precision)
        grid = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False,
                     caption=note, caption_justify="left")
        for name in header:
            grid.add_column(Text(name), justify="left" if name in ("class", "") else "right",
                            style="cyan" if name == "" else None)
        for cells in rows:
            grid.add_row(*map(Text, cells))
        parts += [grid, Text("")]
    return Group(*parts, numbered(steps(e, precision), notes(e, precision), intro(e)))


def to_markdown(e: BinaryExplanation, precision: int) -> str:
    lines = [f"### {title(e)}", ""]
    if e.classes > 1:
        header, rows, note = class_table(e, precision)
        lines += markdown_table(header, rows)
        lines += ["", note, ""] if note else [""]
    lines += markdown_steps(steps(e, precision), notes(e, precision), intro(e))
    return "\n".join(lines) + "\n"


def as_dict(e: BinaryExplanation) -> dict[str, Any]:
    """Every step by name, one value per class (one for a binary row); non-finite numbers are null."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "row": e.row,
        "rows": e.rows,
        "where": e.where,
        "task": e.task,
        "input": e.input,
        "convention": e.convention,
        "class_names": list(e.class_names) if e.class_names else None,
        "scores": json_vector(e.scores),
        "target": json_vector(e.target),
        "abs": json_vector(e.abs_scores),
        "exp_neg_abs": json_vector(e.exp_neg_abs),
        "log1p": json_vector(e.log1p_term),
        "log_p": json_vector(e.log_p),
        "log_1_minus_p": json_vector(e.log_q),
        "p": json_vector(e.p),
        "cross_entropy": json_vector(e.cross_entropy),
        "element_losses": json_vector(e.elements),
        **in_the_batch_json(e),
    }
    optional = {
        "smoothed_target": json_vector(e.smoothed),
        "label_smoothing": e.label_smoothing or None,
        "pos_weight": json_vector(e.pos_weight),
        "focal_gamma": e.focal_gamma,
        "focal_alpha": e.focal_alpha,
        "focal_factor": json_vector(e.focal_factor),
        "class_weight": json_vector(e.class_weight),
        "row_weight": e.row_weight,
        "sample_weight": e.sample_weight,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    return data


def to_json(e: BinaryExplanation) -> str:
    return json.dumps(as_dict(e), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


WRITERS = {
    "json": lambda e, precision: to_json(e),
    "markdown": to_markdown,
}
