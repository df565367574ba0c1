"""Parquet, through pyarrow (the `parquet` extra): a Frame read by row groups."""

from __future__ import annotations

import io

from ..errors import XentError
from .columnar import Frame, pyarrow
from .registry import ReadOptions, Source, file_errors


def read_path(path: str, options: ReadOptions) -> Source:
    with file_errors(path), open(path, "rb"):
        pass
    return Source(path, frame=_frame(path, path))


def read(name: str, data: bytes, options: ReadOptions) -> Source:
    return Source(name, frame=_frame(name, io.BytesIO(data)))


def read_file(name: str, file) -> Source:
    """From a seekable binary file (a URL's): pyarrow reads the footer and the row groups it needs."""
    return Source(name, frame=_frame(name, file))


def _frame(name: str, source) -> Frame:
    pyarrow(name)
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(source, memory_map=isinstance(source, str))
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise XentError(f"not a Parquet file pyarrow can read ({type(error).__name__}: {error})", name) from None
    metadata = file.metadata
    chunks = [metadata.row_group(k).num_rows for k in range(metadata.num_row_groups)]

    def read_groups(first: int, last: int, columns: list[str]):
        try:
            return file.read_row_groups(list(range(first, last + 1)), columns=columns)
        except Exception as error:
            raise XentError(f"cannot read row groups {first}..{last} ({type(error).__name__}: {error})", name) from None

    return Frame(name, file.schema_arrow, chunks, read_groups)
