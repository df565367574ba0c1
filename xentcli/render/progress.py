"""A progress bar on stderr for long runs (computing, writing per-row outputs):
only on a terminal, only after a second."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from .output import Streams

SHOW_AFTER_SECONDS = 1.0


@contextmanager
def progress_bar(
    quiet: bool, total: int, streams: Streams | None = None, label: str = "computing"
) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback that advances by n rows, or None when no bar may show.

    The bar appears once a run has taken SHOW_AFTER_SECONDS, never on stdout,
    never when stderr is not a terminal (pipes, CI logs), never with --quiet.
    """
    streams = streams or Streams.current()
    if quiet or not streams.stderr_is_terminal() or total <= 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(file=streams.stderr), transient=True,
    )
    task = bar.add_task("rows", total=total)
    started = time.monotonic()
    shown = False
    lock = threading.Lock()

    def advance(rows: int) -> None:
        nonlocal shown
        with lock:
            if not shown and time.monotonic() - started >= SHOW_AFTER_SECONDS:
                bar.start()
                shown = True
            bar.advance(task, rows)

    try:
        yield advance
    finally:
        if shown:
            bar.stop()


def by_lines(pieces: Iterable[str], advance: Callable[[int], None], total: int) -> Iterator[str]:
    """The pieces of an output as they come, the bar advanced by the lines each
    holds once it is written (a per-row output writes a row a line), up to
    `total` (a header's lines come first)."""
    done = 0
    for piece in pieces:
        yield piece
        lines = min(piece.count("\n"), total - done)
        done += lines
        advance(lines)
