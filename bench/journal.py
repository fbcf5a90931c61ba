"""An append-only journal of one run's rows: each row durable the moment it exists, at a
cost that does not grow with the rows before it.

A run's results are one parquet file, and parquet cannot be appended to: rewriting the
whole file after every row (to keep it complete at every instant) cost O(rows²) — 14 s of
writes and fsyncs for a 432-row run, and growing with every row. Instead each row is
appended to `.<run>.parquet.journal` (hidden, as writers' working files are; Arrow's IPC
stream format: a schema, then one record batch per row) and fsynced; the parquet file is
rewritten from memory only now and then (`bench.results.ResultsWriter`) and once more when
the run ends, when the journal is removed. A run that crashes leaves its journal beside a parquet file holding a prefix of
its rows, and every reader (`bench.results.read_results`) takes the journal's rows then:
nothing finished is lost.

A crash in the middle of an append leaves a torn last batch: `read` returns every complete
batch before it. A leaf module over pyarrow: it knows nothing of the results schema.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

SUFFIX = ".journal"


def path_for(results: Path) -> Path:
    """The journal beside a results file: `x.parquet` → `.x.parquet.journal` (hidden and not
    `*.parquet`: folder walks never take it for a results file of its own)."""
    results = Path(results)
    return results.with_name(f".{results.name}{SUFFIX}")


class Journal:
    """Appends record batches to a file this process creates (exclusively: an existing
    journal is another run's, never appended to), each fsynced before `append` returns."""

    def __init__(self, path: Path, schema: pa.Schema, mode: int = 0o666) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        self._file = os.fdopen(fd, "wb", buffering=0)  # unbuffered: a failed append leaves nothing pending
        try:
            self._writer = pa.ipc.new_stream(self._file, schema)
            self._sync()
        except BaseException:
            self._file.close()
            self.path.unlink(missing_ok=True)
            raise
        self._good = self._file.tell()  # the end of the last complete batch

    def _sync(self) -> None:
        os.fsync(self._file.fileno())

    def append(self, batch: pa.RecordBatch) -> None:
        """`batch` on disk; a failure (a full disk) cuts the journal back to its last complete
        batch, so later appends are not hidden behind a torn one."""
        try:
            self._writer.write_batch(batch)
            self._sync()
        except BaseException:
            try:
                os.ftruncate(self._file.fileno(), self._good)
                self._file.seek(self._good)
            except (OSError, ValueError):
                pass
            raise
        self._good = self._file.tell()

    def close(self, remove: bool = False) -> None:
        """Close the file; with `remove`, delete it (its rows are in the results file now)."""
        if not self._file.closed:
            self._file.close()
        if remove:
            self.path.unlink(missing_ok=True)
            _sync_folder(self.path.parent)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read(path: Path) -> pa.Table | None:
    """Every complete batch of the journal at `path` as one table; None when there is no
    journal or not even its schema is readable."""
    try:
        data = Path(path).read_bytes()  # a copy, not a map: the writer may cut a torn batch off meanwhile
    except OSError:
        return None
    try:
        reader = pa.ipc.open_stream(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError):
        return None
    batches = []
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError):  # a torn last batch: a crash in the middle of an append
            break
    return pa.Table.from_batches(batches, schema=reader.schema)
