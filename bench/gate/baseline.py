"""Committed baselines: results/baselines/<machine-slug>-<hash>.parquet, one per machine.

A baseline holds several runs of the quick suite (3 by default), so the gate can see each
case's run-to-run spread and never blames a change for noise it had already shown.
The file is ordinary results: `bench show` and `bench compare` read it as they read any.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench import safe_write
from bench.fmt import slug
from bench.processes import ROW_IDENTITY, first_copies
from bench.results import SCHEMA, ResultsError, _files, read_results

BASELINE_DIR = Path("results/baselines")


def machine_slug(machine: str) -> str:
    """'Apple M3 Max / Darwin arm64' → 'apple-m3-max-darwin-arm64-<8 hex digits>'.

    The slug alone is readable but not unique ('Mac Studio / Darwin arm64' and
    'mac-studio-darwin-arm64' share it; every non-ASCII name is empty), and two machines
    sharing one file once meant the second replaced the first's baseline. The hash of the
    full machine name keeps them apart."""
    digest = hashlib.sha256(machine.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug(machine) or 'unknown-machine'}-{digest}"


def baseline_path(machine: str, directory: Path = BASELINE_DIR) -> Path:
    return directory / f"{machine_slug(machine)}.parquet"


def legacy_path(machine: str, directory: Path = BASELINE_DIR) -> Path:
    """Where a baseline was written before the name carried a hash."""
    return directory / f"{slug(machine) or 'unknown-machine'}.parquet"


def holds_only(machine: str) -> safe_write.Replaceable:
    """A baseline file may be refreshed when it is this machine's: a results file whose rows
    are all of `machine` (what the baselines committed before the manifest existed are)."""
    def check(path: Path) -> bool:
        machines = pq.read_table(path, columns=["machine"]).column("machine").unique().to_pylist()
        return machines == [machine]

    return check


def _conformed(path: Path) -> pa.Table:
    """One results file in the schema's columns and types: a column added since the file was
    written (the `process` column, say) is null there, as `read_results` reads it."""
    table = pq.read_table(path)
    for name in SCHEMA.names:
        if name not in table.column_names:
            table = table.append_column(SCHEMA.field(name), pa.nulls(table.num_rows, SCHEMA.field(name).type))
    return table.select(SCHEMA.names).cast(SCHEMA)


def write_baselines(paths: Iterable[Path | str], directory: Path = BASELINE_DIR) -> list[Path]:
    """Every run in `paths` goes into its machine's baseline file, replacing the old one
    (only if it holds that machine's rows alone: another file is never replaced)."""
    files = _files(list(paths))
    for f in files:
        read_results(f)  # validates schema and version, with a one-line error
    tables = [_conformed(f) for f in files]
    table = pa.concat_tables(tables)
    # a process is counted once (bench.processes): a run named twice, or the folder's own earlier
    # baseline read beside the runs it was made from, adds neither rows nor processes
    identity = pd.concat([t.select([c for c in ROW_IDENTITY if c in t.column_names]).to_pandas().assign(source=str(f))
                          for t, f in zip(tables, files)], ignore_index=True)
    table = table.filter(pa.array(first_copies(identity)))
    if table.num_rows == 0:
        raise ResultsError(f"no result rows in {', '.join(map(str, files))}")
    machines = table.column("machine").unique().to_pylist()
    for machine in machines:  # every target checked before the first is written: all or nothing refused
        safe_write.check(baseline_path(machine or "unknown", directory), replaceable=holds_only(machine))
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for machine in machines:
        part = table.filter(pc.equal(table.column("machine"), machine)) if machine is not None else \
            table.filter(pc.is_null(table.column("machine")))
        target = baseline_path(machine or "unknown", directory)
        buffer = io.BytesIO()
        pq.write_table(part.replace_schema_metadata(SCHEMA.metadata), buffer)
        # no manifest: a committed baseline travels without it, so its rows say whose it is
        safe_write.write_bytes(target, buffer.getvalue(), replaceable=holds_only(machine), manifest=False)
        legacy = legacy_path(machine or "unknown", directory)
        if legacy != target and legacy.is_file() and not legacy.is_symlink() and holds_only(machine)(legacy):
            legacy.unlink()  # the same machine's baseline under its old name: superseded, not a second copy
        written.append(target)
    return written
