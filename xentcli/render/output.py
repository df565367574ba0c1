"""Writing outputs: stdout, stderr or a file, every write checked, files replaced whole.

Every write goes through here, to the streams of a `Streams` (the process's
by default; a test passes its own, as httpie's Environment lets it). A write
that fails (a full disk, a file-size limit, a closed stdout) is the user's
to fix, so it becomes an XentError naming where. A closed pipe on stdout
stays a BrokenPipeError: the CLI ends quietly on it (`xent ... | head`).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..errors import XentError

STDOUT = "<stdout>"
DESCRIPTOR_NAME = re.compile(r"/dev/(stdout|stderr|fd/\d+)|/proc/(self|\d+)/fd/\d+")


@dataclass(frozen=True)
class Streams:
    """The streams xent writes to: stdout for data, stderr for everything else
    (errors, warnings, the progress bar). Any of them may be None: the
    process was started with it closed."""

    stdout: TextIO | None
    stderr: TextIO | None

    @classmethod
    def current(cls) -> Streams:
        """The process's streams as they are now (a test runner may have swapped them)."""
        return cls(sys.stdout, sys.stderr)

    def stderr_is_terminal(self) -> bool:
        return self.stderr is not None and self.stderr.isatty()

    def stdout_is_terminal(self) -> bool:
        return self.stdout is not None and self.stdout.isatty()


def write_output(text: str | Iterable[str], path: str | None, streams: Streams | None = None) -> None:
    """Data to stdout (`path` None) or to the file `path`: a string, or pieces
    of one written as they come (per-row outputs are never held whole)."""
    pieces = [text] if isinstance(text, str) else text
    if path is None:
        stream = (streams or Streams.current()).stdout
        for piece in pieces:
            _write_stdout(piece, stream)
        return
    try:
        write_file(path, pieces)
    except OSError as error:
        raise XentError(f"cannot write: {error.strerror or error}", path) from None


def _write_stdout(text: str, stream: TextIO | None) -> None:
    """Through the descriptor, checking each write: with PYTHONUNBUFFERED,
    sys.stdout ignores a short write (a file-size limit, a pipe closing) and
    loses the rest without an error."""
    if stream is None:  # started with stdout closed (`>&-`)
        raise XentError(f"cannot write: {os.strerror(errno.EBADF)}", STDOUT)
    try:
        descriptor = stream.fileno()
    except io.UnsupportedOperation:  # an in-memory stdout: xent run in-process
        stream.write(text)
        return
    try:
        stream.flush()
        data = memoryview(text.encode(stream.encoding, stream.errors))
        while data:
            data = data[os.write(descriptor, data) :]
    except OSError as error:
        discard(stream)
        if isinstance(error, BrokenPipeError):
            raise
        raise XentError(f"cannot write: {error.strerror or error}", STDOUT) from None


def say(line: str, streams: Streams | None = None) -> None:
    """One line on stderr. A stderr that cannot take it does not change the exit code."""
    stream = (streams or Streams.current()).stderr
    if stream is None:
        return
    try:
        print(line, file=stream, flush=True)
    except OSError:
        discard(stream)


def discard(stream: TextIO) -> None:
    """Point a standard stream that failed at /dev/null: what it still buffers
    would fail again when Python flushes it at exit, which prints a complaint
    and exits 120."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


def write_file(path: str, text: str | Iterable[str]) -> None:
    """Write `path` as `open(path, "w")` would, but whole or not at all.

    A regular file (or a new one) is written to a temp file beside it and
    renamed into place, so a failed or interrupted run leaves the old file as
    it was. The temp file gets the owner and mode a plain write would keep
    (or 0o666 less the umask for a new file), and a symlink is followed to
    its target, so the link stays a link. Anything else (a device such as
    /dev/null, a FIFO, /dev/stdout) is written to in place: renaming over it
    would replace it with a regular file; so is a file with other hard links,
    which would keep the old content. A file we may not write is refused,
    as a plain write would refuse it (a rename would not ask).
    """
    target = os.path.realpath(path)
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)  # as a plain write would
    if _in_place(path, existing):
        # Appending: a descriptor redirected with `>>` keeps what it holds.
        with open(path, "a", encoding="utf-8", newline="") as stream:
            stream.writelines([text] if isinstance(text, str) else text)
        return
    if existing is not None and existing.st_nlink > 1:
        # Other hard links would keep the old content after a rename: written in place, as a plain write does.
        with open(path, "w", encoding="utf-8", newline="") as stream:
            stream.writelines([text] if isinstance(text, str) else text)
        return
    folder, name = os.path.split(target)
    temp = os.path.join(folder, f".{name}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as in open()
    try:
        with open(descriptor, "w", encoding="utf-8", newline="") as stream:
            if existing is not None:
                _keep_owner_and_mode(descriptor, existing)
            stream.writelines([text] if isinstance(text, str) else text)
            stream.flush()
            os.fsync(descriptor)
        os.replace(temp, target)
    except BaseException:  # also Ctrl-C, and SIGTERM/SIGHUP (raised as SystemExit)
        Path(temp).unlink(missing_ok=True)
        raise


def _in_place(path: str, existing: os.stat_result | None) -> bool:
    """Whether `path` must be written where it is: not a regular file, or a
    descriptor's name, which may be a shell's redirection to a file (renaming
    would leave the shell's file behind)."""
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        return True
    return DESCRIPTOR_NAME.fullmatch(os.path.abspath(path)) is not None


def _keep_owner_and_mode(descriptor: int, existing: os.stat_result) -> None:
    """What a plain write keeps: the owner (when we may set it: root writing a
    user's file) and then the mode (chown clears set-id bits)."""
    with contextlib.suppress(PermissionError):
        os.fchown(descriptor, existing.st_uid, existing.st_gid)
    os.fchmod(descriptor, stat.S_IMODE(existing.st_mode))


def check_writable(outputs: Iterable[str | None]) -> None:
    """Fail before the work, not after it, when an output's folder is missing."""
    for path in outputs:
        if path and not os.path.isdir(os.path.dirname(os.path.realpath(path))):
            raise XentError("cannot write: no such folder", path)


def refuse_overwriting_inputs(outputs: Iterable[str | None], inputs: Iterable[str | None]) -> None:
    """Refuse an output that is one of the inputs (by any name: a link, a glob,
    a comma list), before anything is read: writing it would destroy the data."""
    from ..readers import STDIN, expand_paths

    written = [path for path in outputs if path and os.path.isfile(path)]
    if not written:
        return
    for spec in inputs:
        if not spec or spec == STDIN:
            continue
        try:
            paths = expand_paths(spec)
        except XentError:  # a pattern that matches nothing names no file to protect
            continue
        for path in paths:
            for output in written:
                if os.path.isfile(path) and os.path.samefile(path, output):
                    raise XentError("is one of the inputs: refusing to overwrite it", output)
