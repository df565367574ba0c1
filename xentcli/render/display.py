"""Text for people: anything from the data made safe to show, numbers in plain ASCII.

Class names and file names come from files others wrote. On a terminal an
escape sequence in them (``\\x1b]0;...``) would be obeyed, not shown, so
the renderers pass every such string through `printable`. Numbers are
written with an ASCII minus and never as ``-0.0000``, so that they paste
into Python or a spreadsheet.
"""

from __future__ import annotations

import math
import unicodedata

# Bidirectional controls reorder what a terminal shows ("Trojan Source").
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """`text` with control characters (C0, DEL, C1), line separators and bidi
    controls written as Python escapes (``\\x1b``, ``\\u202e``); the rest as is."""
    if text.isprintable():
        return text
    return "".join(_escape(ch) for ch in text)


NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(ch: str) -> str:
    if ch in NAMED:
        return NAMED[ch]
    if ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch


def fixed(value: float, precision: int) -> str:
    """`value` with `precision` decimals: ASCII `-`, no negative zero, nan/inf/-inf."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{precision}f}"
    if text.startswith("-") and not text.strip("-0."):
        return text[1:]  # -0.0000: it rounds to zero
    return text


def signed(value: float, precision: int) -> str:
    """`fixed` with a `+` on positive values (none on values that round to zero)."""
    text = fixed(value, precision)
    return "+" + text if value > 0 and text.strip("0.") else text


def abbreviate(name: str, length: int) -> str:
    """`name` in at most `length` characters: cut, ending in `…`, when longer."""
    return name if len(name) <= length else name[: max(length - 1, 1)] + "…"


def shortest_distinct(names: list[str]) -> int:
    """The smallest length at which `abbreviate` still tells every name apart
    (the longest name's length when they are not distinct to begin with)."""
    longest = max((len(n) for n in names), default=1)
    if len(set(names)) < len(names):
        return longest
    length = longest
    while length > 2 and len({abbreviate(n, length - 1) for n in names}) == len(names):
        length -= 1
    return length


EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(share: float, width: int) -> str:
    """A horizontal bar of share * width cells, to eighths of a cell."""
    if not math.isfinite(share) or share <= 0:
        return ""
    eighths = round(min(share, 1.0) * width * 8)
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def json_number(value: float) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    value = float(value)
    return value if math.isfinite(value) else None


def json_vector(values) -> list[float | None] | None:
    """An array as JSON takes it (NaN and infinities: null); None stays None."""
    return None if values is None else [json_number(v) for v in values]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines: text columns left, numbers right, an empty header named bar."""
    lines = ["| " + " | ".join(h or "bar" for h in header) + " |"]
    lines.append("|" + "|".join(":--" if h in ("class", "") else "--:" for h in header) + "|")
    lines += ["| " + " | ".join(c.replace("|", "\\|") or " " for c in cells) + " |" for cells in rows]
    return lines


def numbered(steps: list[str], notes: list[str], intro: str | None = None):
    """The numbered steps of a derivation, and the unnumbered notes under them, as a rich grid."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="dim")
    grid.add_column()
    if intro:
        grid.add_row("", Text(intro))
    for k, line in enumerate(steps, start=1):
        grid.add_row(f"{k}.", Text(line))
    for line in notes:
        grid.add_row("", Text(line))
    return grid


def markdown_steps(steps: list[str], notes: list[str], intro: str | None = None) -> list[str]:
    """The numbered steps of a derivation and the notes under them, as Markdown lines."""
    lines = [intro, ""] if intro else []
    lines += [f"{k}. {line}" for k, line in enumerate(steps, start=1)]
    return [*lines, "", *(f"- {line.strip()}" for line in notes)]
