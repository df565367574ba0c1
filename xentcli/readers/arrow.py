"""Arrow IPC files (`.arrow`, Feather v2), through pyarrow (the `parquet` extra):
a Frame read by record batches, memory-mapped."""

from __future__ import annotations

from ..errors import XentError
from .columnar import Frame, pyarrow
from .registry import ReadOptions, Source, file_errors


def read_path(path: str, options: ReadOptions) -> Source:
    with file_errors(path), open(path, "rb"):
        pass
    pa = pyarrow(path)
    return Source(path, frame=_frame(path, lambda: pa.memory_map(path)))


def read(name: str, data: bytes, options: ReadOptions) -> Source:
    pa = pyarrow(name)
    return Source(name, frame=_frame(name, lambda: pa.BufferReader(data)))


def _frame(name: str, open_source) -> Frame:
    pa = pyarrow(name)
    try:
        reader = pa.ipc.open_file(open_source())
    except Exception as error:  # ArrowInvalid for Feather v1, a stream, or a damaged file
        raise XentError(
            f"not an Arrow IPC file pyarrow can read ({type(error).__name__}: {error}); "
            "Feather v1 files: write them again with pyarrow.feather.write_feather",
            name,
        ) from None
    chunks = [reader.get_batch(k).num_rows for k in range(reader.num_record_batches)]

    def read_batches(first: int, last: int, columns: list[str]):
        batches = [reader.get_batch(k).select(columns) for k in range(first, last + 1)]
        return pa.Table.from_batches(batches, schema=batches[0].schema) if batches else None

    return Frame(name, reader.schema, chunks, read_batches)
