"""The rows of large text inputs counted on a helper thread while xent starts up.

Start-up (Python, numpy, typer: about 0.2 s) runs on one core. A CSV over
STREAM_BYTES is parsed in chunks of lines, and before that its rows are
counted, chunk by chunk (the engine needs every chunk's first row); on a
2-core machine that count and the first touch of the file's memory map
took 30-60 ms after start-up. Here the files named on the command line are
mapped and counted on the idle core during the imports; the text reader
then takes the same map and the counts (TextStream). Only a speed-up: the
reader counts itself whatever is not here (a file past MOST_BYTES too),
and the counts are those its own count gives (the same C function on the
same bytes). Nothing heavy is imported (numpy comes later, on the main
thread).
"""

from __future__ import annotations

import mmap
import os
import stat
import threading
from array import array
from dataclasses import dataclass, field

# As readers/text.py: a text file above STREAM_BYTES is streamed in chunks of CHUNK_BYTES.
STREAM_BYTES = 16 << 20
CHUNK_BYTES = 1 << 20
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")
CPUS = os.cpu_count() or 1
# Past this many bytes in all, the reader's own count on every core, begun after
# start-up, ends before this one thread's, begun at once (start-up about 0.15 s,
# counting about 1.2 GB/s a core: a 720 MB CSV on 2 cores took 832 ms end to end
# counted here, 755 counted by the reader; 240 MB, 360 against 402). One core: none.
MOST_BYTES = 160_000_000 * CPUS // (CPUS - 1) if CPUS > 1 else 0


@dataclass
class Counted:
    """A memory map of a file, cut after a newline every CHUNK_BYTES or so
    (cuts[0] = 0, cuts[-1] = its size), with the data lines of each chunk
    (counts) and the offset of its first NUL byte (or -1); ready once `done` is set."""

    identity: tuple[int, int, int, int]
    data: mmap.mmap
    cuts: list[int] = field(default_factory=list)
    counts: array = field(default_factory=lambda: array("q"))
    nul: int = -1
    done: threading.Event = field(default_factory=threading.Event)


_counted: list[Counted] = []


def cuts_of(data: mmap.mmap | bytes, start: int, end: int, chunk: int) -> list[int]:
    """Offsets from start to end, each after a newline about `chunk` bytes past the one before."""
    cuts = [start]
    while cuts[-1] < end:
        cut = data.find(b"\n", min(cuts[-1] + chunk, end - 1))
        cuts.append(end if cut < 0 else cut + 1)
    return cuts


def identity(status: os.stat_result) -> tuple[int, int, int, int]:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def start(arguments: list[str]) -> None:
    """Map the large text files among the arguments and count their rows on a helper thread."""
    try:
        from . import _fastcsv
    except ImportError:
        return
    total, new = 0, []
    for argument in arguments:
        if not argument.lower().endswith(TEXT_SUFFIXES):
            continue
        try:
            # stat before open: opening a named pipe would wait for its writer, then take its data
            if not stat.S_ISREG(os.stat(argument).st_mode):
                continue
            with open(argument, "rb") as file:
                status = os.fstat(file.fileno())
                key = identity(status)
                if not stat.S_ISREG(status.st_mode) or status.st_size <= STREAM_BYTES or any(
                    entry.identity == key for entry in (*_counted, *new)
                ):
                    continue  # small, replaced since the stat, or named twice
                if total + status.st_size > MOST_BYTES:
                    continue
                data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            continue
        total += status.st_size
        new.append(Counted(key, data))
    if new:
        _counted.extend(new)
        threading.Thread(target=_count, args=(_fastcsv, new), daemon=True).start()


def _count(fastcsv, counted: list[Counted]) -> None:
    for entry in counted:
        try:
            cuts = cuts_of(entry.data, 0, len(entry.data), CHUNK_BYTES)
            counts = array("q", bytes(8 * (len(cuts) - 1)))
            entry.nul = fastcsv.count_rows(entry.data, array("q", cuts), counts)
            entry.cuts, entry.counts = cuts, counts
        except Exception:  # left to the reader, which counts for itself
            pass
        entry.done.set()


def mapped(status: os.stat_result) -> mmap.mmap | None:
    """The map made here of the file with this fstat, if any."""
    key = identity(status)
    return next((entry.data for entry in _counted if entry.identity == key), None)


def counted(data: object) -> Counted | None:
    """What was counted of this map, once counted (waits for the helper); None if it was not."""
    entry = next((entry for entry in _counted if entry.data is data), None)
    if entry is None:
        return None
    entry.done.wait()
    return entry if entry.cuts else None
