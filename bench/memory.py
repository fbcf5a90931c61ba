"""Process-level peak memory, resettable per case where the OS allows it.

Device allocators are read through each framework's API (see the adapters); this is
the figure every row has regardless. On Linux the high-water mark (VmHWM) resets when
"5" is written to /proc/self/clear_refs (Linux >= 4.0), so the peak is this case's own.
Elsewhere getrusage's ru_maxrss is the process-lifetime peak (bytes on macOS, KiB on
Linux), recorded with scope "process" so nobody reads it as a per-case figure.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak_rss() -> str:
    """Start a new peak window; returns the scope the next reading will have."""
    try:
        _CLEAR_REFS.write_text("5")
        return "case"
    except OSError:
        return "process"


def peak_rss_bytes() -> int:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
