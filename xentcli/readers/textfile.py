"""Delimited text as an input format: memory-mapped where the C reader can parse it in place."""

from __future__ import annotations

import mmap
import os

from .. import prefetch
from .registry import ReadOptions, Source, file_errors
from . import text


def read_path(path: str, options: ReadOptions) -> Source:
    with file_errors(path), open(path, "rb") as file:
        status = os.fstat(file.fileno())
        if text._fastcsv is not None and status.st_size:
            data = prefetch.mapped(status)  # the map whose rows were counted during start-up, if any
            if data is None:
                data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        else:
            data = file.read()
    return read(path, data, options)


def read(name: str, data: bytes, options: ReadOptions) -> Source:
    table = text.parse_text(name, data, delimiter=options.delimiter, header=options.header, ids=options.ids)
    return Source(name, table=table)
