"""The table of a language-model batch per sequence (--per-sequence): each
sequence's counted tokens, loss and perplexity; under it the token-weighted
mean (what a trainer reports) and the mean over sequences (what some
evaluation harnesses report), named as such."""

from __future__ import annotations

from typing import Any

from .compute import Report, shown_positions
from .display import fixed, printable


def table(report: Report, precision: int, limit: int) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    result, sequences = report.result, report.sequences

    def fmt(value: float) -> str:
        return fixed(float(value), precision)

    rows = Table(box=None, padding=(0, 1), show_edge=False)
    for name in ("sequence", "tokens", "loss", "perplexity"):
        rows.add_column(name, justify="right")
    positions, hidden = shown_positions(len(sequences.tokens), limit)
    losses, perplexities = sequences.losses, sequences.perplexities
    for k, position in enumerate(positions):
        if hidden and k and positions[k - 1] + 1 != position:
            rows.add_row("…", "", "", "")
        rows.add_row(str(position), str(int(sequences.tokens[position])), fmt(losses[position]),
                     f"{perplexities[position]:.{precision}g}")
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("loss (token mean)", Text(fmt(result.mean), style="bold cyan") + Text("  what a trainer reports"))
    lines.add_row("sequence mean", Text(fmt(sequences.mean)) + Text("  the mean of the sequences' losses"))
    lines.add_row("perplexity", f"{result.perplexity:.{precision}g} (of the token mean)")
    counted = int(sequences.tokens.sum())
    lines.add_row("tokens", f"{counted} counted of {result.rows} positions · {len(sequences.tokens)} sequences")
    lines.add_row("accuracy", f"{result.accuracy:.1%} of the counted tokens")
    lines.add_row("computed", Text(printable(f"{result.backend} · {result.device} · {result.dtype} · {result.convention}")))
    return Group(rows, Text(""), lines)
