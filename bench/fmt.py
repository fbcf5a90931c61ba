"""How numbers are printed, for the CLI's tables, the gate's summaries and the report alike.

A leaf module (it imports nothing of the project) so that anything that shows a number can
use it without importing the command line; that import once made a circle
(report → cli → report).
"""

from __future__ import annotations

import math
import re
import numbers
from typing import Any


def finite(value: Any) -> bool:
    """A finite real number, numpy scalars included (parquet integers arrive as numpy.int64)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def fmt_time(seconds: Any) -> str:
    """Seconds in the largest unit that keeps the number ≥ 1 (3 significant figures); "—" for
    anything that is not a finite number."""
    if not finite(seconds):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_num(value: Any, spec: str = ".3g") -> str:
    if not finite(value):
        return "—"
    return format(value, spec)


def fmt_bytes(n: Any) -> str:
    """Binary units (KiB, MiB, GiB): memory is allocated in powers of two."""
    if not finite(n):
        return "—"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


# Leading characters a spreadsheet reads as the start of a formula (OWASP "CSV injection"),
# tab and carriage return included because some spreadsheets strip them first.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(cell: Any) -> Any:
    """A text cell a spreadsheet shows as text: one starting like a formula gets a leading
    apostrophe (the spreadsheet convention for "this is text"). Numbers pass unchanged,
    so a negative number stays a number. NUL is dropped: spreadsheets and `csv` readers
    stop at it or refuse the file (a hostile reason once put 436 of them in results.csv)."""
    if isinstance(cell, str):
        cell = cell.replace("\x00", "")
        if cell.startswith(FORMULA_STARTS):
            return "'" + cell
    return cell


def json_finite(value: Any) -> Any:
    """`value` with every non-finite float (NaN, ±inf, numpy's too) as None, through dicts, lists
    and tuples: Python's json writes them as NaN/Infinity, which strict parsers (jq, JavaScript's
    JSON.parse) reject, so an export with one inf sample was unreadable to them."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_finite(v) for v in value]
    return value


def slug(text: str) -> str:
    """Lower-case letters and digits joined by single hyphens: a file name or an HTML anchor
    made from a machine or workload name ('Apple M3 Max / Darwin arm64' → 'apple-m3-max-darwin-arm64')."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
