"""Streaming readers: every input format becomes batches of (record_number, raw) text records.

JSON lines keep their original line text. CSV and Parquet rows are rendered as one JSON object
per row (a CSV `properties` cell that holds JSON is embedded as JSON), so that one validation
path serves every format and a quarantined row still shows what was read.
"""

import codecs
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BATCH_BYTES = 32 * 1024 * 1024
BATCH_ROWS = 100_000
NEWLINE = ord("\n")

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
FORMATS = ("jsonl", "csv", "parquet")
FORMAT_NAMES = {"jsonl": "JSON lines", "csv": "CSV", "parquet": "Parquet"}


class UnsupportedFileError(ValueError):
    """The file's name does not say which of the accepted formats it is in."""


class UnreadableFileError(ValueError):
    """The file is not what its name says: nothing of it can be loaded."""


def detect_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise UnsupportedFileError(
        f"{path}: unsupported file type; expected .jsonl, .ndjson, .csv or .parquet "
        "(JSON lines and CSV may be gzip-compressed, ending in .gz)"
    )


def _skip_reason(candidate: Path) -> str | None:
    if candidate.name.startswith("."):
        return "a dot-name: still being written"
    try:
        detect_format(candidate)
    except UnsupportedFileError:
        return "not an event file (.jsonl, .ndjson, .csv or .parquet, optionally .gz)"
    return None


def loadable_files(folder: Path) -> list[Path]:
    """Files under a folder in a loadable format, by name; dot-files are still being written."""
    return [
        candidate
        for candidate in sorted(folder.rglob("*"))
        if candidate.is_file() and _skip_reason(candidate) is None
    ]


def skipped_files(folder: Path) -> list[tuple[Path, str]]:
    """Files under a folder that a load leaves alone, each with the reason."""
    skipped = []
    for candidate in sorted(folder.rglob("*")):
        if candidate.is_file() and (reason := _skip_reason(candidate)) is not None:
            skipped.append((candidate, reason))
    return skipped


def _plain_blocks(path: Path, block_bytes: int) -> Iterator[pa.Buffer]:
    """Blocks of an uncompressed file, each cut after its last line break (the final block
    may end without one). The tail after the cut is read again with the next block, which
    saves copying every block to prepend it."""
    with pa.OSFile(str(path)) as handle:
        size = handle.size()
        position = 0
        wanted = block_bytes
        while position < size:
            handle.seek(position)
            block = handle.read_buffer(min(wanted, size - position))
            if position + block.size < size:
                last_break = _last_line_break(block)
                if last_break < 0:  # one line longer than the block: read more of it
                    wanted *= 2
                    continue
                block = block.slice(0, last_break + 1)
            wanted = block_bytes
            position += block.size
            yield block


def _last_line_break(block: pa.Buffer) -> int:
    """The offset of the block's last line break, or -1. The search starts at the end, where
    the break almost always is, instead of scanning the whole block."""
    data = np.frombuffer(block, dtype=np.uint8)
    window = 1 << 16
    while True:
        tail = data[-window:]
        found = np.flatnonzero(tail == NEWLINE)
        if found.size:
            return data.size - tail.size + int(found[-1])
        if tail.size == data.size:
            return -1
        window *= 16


def _gzip_blocks(path: Path, block_bytes: int) -> Iterator[pa.Buffer]:
    """As ``_plain_blocks``, for a gzip stream, which cannot be read twice: the tail after
    the cut is carried over instead."""
    carried = b""
    with gzip.open(path, "rb") as handle:
        while True:
            chunk = handle.read(block_bytes)
            pending = carried + chunk
            if not chunk:
                if pending:
                    yield pa.py_buffer(pending)
                return
            cut = pending.rfind(b"\n")
            if cut < 0:
                carried = pending
                continue
            yield pa.py_buffer(pending[: cut + 1])
            carried = pending[cut + 1 :]


def is_gzip(path: Path) -> bool:
    with path.open("rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def _lines(block: pa.Buffer) -> pa.LargeStringArray:
    """The lines of a block as Arrow strings over the block's own bytes, each with its line
    break (JSON ignores it; validation strips it where it matters). A block with invalid UTF-8
    is decoded with replacement characters first, as a text reader would."""
    lines = _split_at_line_breaks(block)
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        repaired = block.to_pybytes().decode("utf-8", errors="replace").encode("utf-8")
        lines = _split_at_line_breaks(pa.py_buffer(repaired))
    return lines


def _split_at_line_breaks(block: pa.Buffer) -> pa.LargeStringArray:
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == NEWLINE) + 1
    if ends.size == 0 or ends[-1] != block.size:  # the file's last line has no line break
        ends = np.append(ends, block.size)
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    return pa.LargeStringArray.from_buffers(ends.size, pa.py_buffer(offsets), block)


def _numbered(first_number: int, raw: pa.Array | pa.ChunkedArray) -> pa.Table:
    """Records numbered from ``first_number``. Arrays are built from buffers: converting
    Python or NumPy values makes pyarrow import pandas, a third of a second per process."""
    numbers = np.arange(first_number, first_number + len(raw), dtype=np.int64)
    record_numbers = pa.Array.from_buffers(pa.int64(), len(raw), [None, pa.py_buffer(numbers)])
    return pa.Table.from_arrays([record_numbers, raw], names=["record_number", "raw"])


def read_jsonl(path: Path, block_bytes: int = BATCH_BYTES) -> Iterator[pa.Table]:
    """Lines in order, numbered from 1, each with its line break; blank lines keep their
    numbers (validation skips them).

    Lines are Arrow strings laid over the blocks as read: no Python object and no copy per
    line, which is what made reading cost as much as validating.
    """
    read_blocks = _gzip_blocks if is_gzip(path) else _plain_blocks
    next_number = 1
    for block in read_blocks(path, block_bytes):
        if next_number == 1 and block.size >= 3 and block.slice(0, 3) == codecs.BOM_UTF8:
            # Written by some editors and Windows tools; it is not part of the first record.
            block = block.slice(3)
            if block.size == 0:
                return
        lines = _lines(block)
        yield _numbered(next_number, lines)
        next_number += len(lines)


def _render_rows_as_json(batch: pa.RecordBatch, first_number: int) -> pa.Table:
    con = duckdb.connect()
    con.register("batch", batch)
    rendered_columns = []
    for field in batch.schema:
        quoted = '"' + field.name.replace('"', '""') + '"'
        key = "'" + field.name.replace("'", "''") + "'"
        if field.name == "properties" and pa.types.is_string(field.type):
            value = (
                f"case when json_valid({quoted}) then {quoted}::json else to_json({quoted}) end"
            )
        else:
            value = quoted
        rendered_columns.append(f"{key}, {value}")
    json_expr = "json_object(" + ", ".join(rendered_columns) + ")" if rendered_columns else "'{}'"
    # Rendering keeps the batch's row order (one in-memory source, order preserved); the
    # numbers are attached afterwards by position, not computed in SQL.
    rendered = con.sql(f"select {json_expr}::varchar as raw from batch").to_arrow_table()
    con.close()
    return _numbered(first_number, rendered.column("raw"))


def read_csv(path: Path) -> Iterator[pa.Table]:
    """Data rows numbered from 1 (the header is not a record); every cell read as text."""
    stream = pa.input_stream(str(path), compression="detect")
    header_reader = pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=1 << 16))
    names = header_reader.schema.names
    header_reader.close()
    reader = pacsv.open_csv(
        pa.input_stream(str(path), compression="detect"),
        read_options=pacsv.ReadOptions(block_size=BATCH_BYTES // 4),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    next_number = 1
    for batch in reader:
        yield _render_rows_as_json(batch, next_number)
        next_number += batch.num_rows


def read_parquet(path: Path) -> Iterator[pa.Table]:
    parquet = pq.ParquetFile(path)
    next_number = 1
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        yield _render_rows_as_json(batch, next_number)
        next_number += batch.num_rows


def read_records(path: Path, file_format: str | None = None) -> Iterator[pa.Table]:
    file_format = file_format or detect_format(path)
    readers = {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}
    if file_format not in readers:
        raise UnsupportedFileError(f"{path}: unknown format {file_format!r}")
    return _naming_unreadable_files(path, file_format, readers[file_format](path))


def _naming_unreadable_files(
    path: Path, file_format: str, batches: Iterator[pa.Table]
) -> Iterator[pa.Table]:
    """A broken container (truncated gzip, not Parquet, ragged CSV) fails the whole file with
    its name; records inside a readable file are judged one by one instead."""
    try:
        yield from batches
    except (EOFError, zlib.error, gzip.BadGzipFile, pa.ArrowException) as error:
        raise UnreadableFileError(
            f"{path}: cannot be read as {FORMAT_NAMES[file_format]} ({error})"
        ) from error
