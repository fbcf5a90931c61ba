"""Finding the results files under a folder: the one walk every folder reader uses.

`Path.rglob` does not follow symlinked sub-folders, so runs linked in from elsewhere
(`ln -s /elsewhere/runs results/mac`) were left out of show, report, compare and baseline
without a word; and `Path.resolve()`, used to read each file once, raises on a symlink
loop, which cost `bench report` every run. This walk follows a linked folder once, never
enters a folder it has already entered (a loop such as `sub -> .` ends there), and says
so in a note the caller prints as a warning. Files are listed, not opened: a looping or
dangling `*.parquet` link is listed and its reader names the problem for that file alone.
"""

from __future__ import annotations

import os
from pathlib import Path


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what `path` names after links, or None when it names nothing
    readable (a loop, a dangling link): the same file reached twice is read once."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def parquet_files(folder: Path, notes: list[str] | None = None) -> list[Path]:
    """Every `*.parquet` under `folder` (hidden file names skipped: writers' temporary files
    are hidden), sorted, following symlinked sub-folders once. Each sub-folder that was not
    entered (already entered through another path: a loop or a second link; unreadable)
    adds one line to `notes`."""
    found: list[Path] = []
    entered: dict[tuple[int, int], Path] = {}
    pending = [Path(folder)]
    while pending:
        here = pending.pop()
        key = identity(here)
        if key is None:
            _note(notes, f"skipped {here}: cannot be read (a symlink loop or a dangling link)")
            continue
        if key in entered:
            _note(notes, f"skipped {here}: the folder {entered[key]} was read already (a symlink loop or a second link to it)")
            continue
        entered[key] = here
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            _note(notes, f"skipped {here}: {exc.strerror or exc}")
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(path)
            elif entry.name.endswith(".parquet") and not entry.name.startswith("."):
                found.append(path)
        pending.extend(reversed(subfolders))
    return sorted(found)


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None:
        notes.append(text)
