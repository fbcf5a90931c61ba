"""Debian's Chromium for Playwright: where it is and how it is started here.

Playwright's own browser download is not reachable on these machines (and CI installs
Debian's `chromium` package: .ci/run), so Playwright drives the system browser through
`executable_path`. The flags keep it from reaching for the network at start-up (component
updates, sync, background fetches), which this machine's closed network refuses noisily.
Used by tests/test_report_browser.py (through pytest-playwright's fixtures) and by
scripts/report_timing.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars")
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True, "has_touch": True}


def find_chromium() -> str | None:
    """The system Chromium, or None when it is not installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or (str(Path("/usr/bin/chromium")) if Path("/usr/bin/chromium").exists() else None)


def launch_args(binary: str) -> dict[str, Any]:
    """Keyword arguments of `playwright.chromium.launch` for the system browser, headless."""
    return {"executable_path": binary, "args": list(FLAGS), "headless": True}


def context_args(width: int, height: int = 900) -> dict[str, Any]:
    """A browser context at `width` px (390: a phone, with touch), offline: the page must need nothing."""
    base = dict(PHONE) if width <= 400 else {"viewport": {"width": width, "height": height}}
    base["viewport"] = {"width": width, "height": base["viewport"]["height"] if width <= 400 else height}
    return {**base, "offline": True}
