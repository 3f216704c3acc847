"""Streaming readers: every input format becomes batches of (record_number, raw) text records.

JSON lines keep their original line text. CSV and Parquet rows are rendered as one JSON object
per row (a CSV `properties` cell that holds JSON is embedded as JSON), so that one validation
path serves every format and a quarantined row still shows what was read.
"""

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BATCH_BYTES = 32 * 1024 * 1024
BATCH_ROWS = 100_000

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
FORMATS = ("jsonl", "csv", "parquet")


class UnsupportedFileError(ValueError):
    """The file's name does not say which of the accepted formats it is in."""


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


def loadable_files(folder: Path) -> list[Path]:
    """Files under a folder in a loadable format, by name; dot-files are still being written."""
    found = []
    for candidate in sorted(folder.rglob("*")):
        if not candidate.is_file() or candidate.name.startswith("."):
            continue
        try:
            detect_format(candidate)
        except UnsupportedFileError:
            continue
        found.append(candidate)
    return found


def _open_binary(path: Path) -> io.BufferedIOBase:
    with path.open("rb") as probe:
        is_gzip = probe.read(2) == b"\x1f\x8b"
    if is_gzip:
        return gzip.open(path, "rb")
    return path.open("rb")


def _split_lines(block: bytes) -> pa.Array:
    """The lines of a block that ends at a line break (or at the end of the file).

    Valid UTF-8 is wrapped as an Arrow string without a copy; a block with invalid bytes is
    decoded with replacement characters first, as a text reader would.
    """
    try:
        text = _as_arrow_string(block)
        text.validate(full=True)
    except pa.ArrowInvalid:
        text = _as_arrow_string(block.decode("utf-8", errors="replace").encode("utf-8"))
    lines = pc.split_pattern(text, "\n").flatten()
    if block.endswith(b"\n"):  # the empty piece after the final line break
        lines = lines.slice(0, len(lines) - 1)
    return lines


def _as_arrow_string(data: bytes) -> pa.Array:
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64).tobytes())
    return pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data))


def read_jsonl(path: Path) -> Iterator[pa.Table]:
    """Lines in order, numbered from 1, without their line break; blank lines keep their
    numbers (validation skips them).

    The file is read in blocks cut after their last line break and split by Arrow: no Python
    object per line, which is what made reading cost as much as validating.
    """
    next_number = 1
    carried = b""
    with _open_binary(path) as handle:
        while True:
            block = handle.read(BATCH_BYTES)
            at_end = not block
            pending = carried + block
            if at_end:
                complete, carried = pending, b""
            else:
                cut = pending.rfind(b"\n")
                if cut < 0:  # one line longer than a block: keep reading
                    carried = pending
                    continue
                complete, carried = pending[: cut + 1], pending[cut + 1 :]
            if complete:
                lines = _split_lines(complete)
                numbers = pa.array(np.arange(next_number, next_number + len(lines), dtype=np.int64))
                next_number += len(lines)
                yield pa.table({"record_number": numbers, "raw": lines})
            if at_end:
                return


def _render_rows_as_json(batch: pa.RecordBatch, first_number: int) -> pa.Table:
    numbers = pa.array(range(first_number, first_number + batch.num_rows), pa.int64())
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
    return pa.table({"record_number": numbers, "raw": rendered.column("raw")})


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
    if file_format == "jsonl":
        return read_jsonl(path)
    if file_format == "csv":
        return read_csv(path)
    if file_format == "parquet":
        return read_parquet(path)
    raise UnsupportedFileError(f"{path}: unknown format {file_format!r}")
