"""`xent` and `python -m xentcli`: the guards first, then the imports.

typer and numpy take a tenth of a second or more to import; the guards are
set before, so that a Ctrl-C at any moment ends as `xent: interrupted`
(exit 130), and SIGTERM or SIGHUP unwind (removing any temp file) and exit
128 + the signal's number, never with a traceback.
"""

from __future__ import annotations

import gc
import os
import signal
import sys

from .errors import ExitCode


def main() -> None:
    """Run the `xent` command."""
    # numpy's OpenBLAS starts a thread per core that spins for a while: xent
    # makes no BLAS call, and on 2 cores that thread took 12% of the CPU from
    # the parsers (start-up 20 ms and a 95 MB CSV 43 ms slower). The user's
    # own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if sys.stderr is None:  # started with stderr closed (`2>&-`): messages must not fall back onto stdout
        sys.stderr = open(os.devnull, "w")
    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) == signal.SIG_DFL:  # under `nohup`, SIGHUP stays ignored
            signal.signal(number, _unwind)
    try:
        # The imports make ~25K objects that live as long as the process; the
        # cycle collector would walk them again and again during the imports,
        # and once more at exit. Frozen (never collected), the 2-row run's
        # start-up took 140 ms instead of 175.
        gc.disable()
        try:
            from . import prefetch

            prefetch.start(sys.argv[1:])  # the rows of large CSVs counted on the idle core while the imports run
            from .cli import app
        finally:
            gc.freeze()
            gc.enable()
        _keep_freed_memory()

        app(prog_name="xent")
    except KeyboardInterrupt:  # while importing, before typer guards the command
        print("xent: interrupted", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)


def _keep_freed_memory() -> None:
    """Let glibc keep the blocks xent frees, for the next ones to reuse.

    Left alone it maps each block above a threshold (128 KB, raised as large
    blocks are freed) afresh and gives back what it frees, so the next
    block's pages are faulted and zeroed again: on the 95 MB CSV a chunk's
    numbers (0.8 MB) were fresh memory each time, 3.7K page faults of the
    run's 13.5K. The command runs for seconds, and what it frees it needs
    again soon; memory stays bounded by what is live at once."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # not glibc (TypeError: no process handle, as on Windows)
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    mallopt(M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest; blocks above it are still mapped (and given back)
    mallopt(M_TRIM_THRESHOLD, 1 << 30)


def _unwind(number: int, frame: object) -> None:
    """End as an exit does, so that cleanups run on the way (a temp file is removed)."""
    raise SystemExit(128 + number)


if __name__ == "__main__":
    main()
