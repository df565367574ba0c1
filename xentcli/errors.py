"""The one error type a user can cause, and the exit codes it maps to."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    GATE_FAILED = 1
    USAGE = 2
    INTERNAL = 70  # a bug in xent (EX_SOFTWARE)
    INTERRUPTED = 130


class XentError(Exception):
    """A problem with the user's input, options or files.

    `where` names the place (``file:line``, ``file:line:column``, an NPY
    index or a config key); the CLI prints ``xent: error: <where>: <what>``.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __reduce__(self):  # pickled whole, `where` too (an error raised on a Dask worker comes back as it was)
        return (type(self), (self.message, self.where))

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message
