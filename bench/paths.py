"""Can an output go there? Asked before the work that produces it, not after.

`bench report` renders every chart before writing, and `bench compare` prints its verdict
before writing --markdown: a read-only folder or a file standing where a folder should be
then cost the work and ended in a traceback (and an exit code CI read as "regression").
These checks name the problem in one line first. A leaf module: it imports nothing of
the project.
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process's umask (reading it means setting it; it is put back at once). Writers that
    create through mkstemp/mkdtemp (mode 0600/0700) widen the file to what open() would have
    made, so results and reports stay readable from a shared folder or a web server."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _existing_ancestor(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists() or parent.is_symlink():
            return parent
    return Path(".")


def output_dir_problem(directory: Path) -> str | None:
    """Why files cannot be written into `directory` (created if missing), or None."""
    directory = Path(directory)
    base = _existing_ancestor(directory.absolute())
    if not base.is_dir():
        return f"cannot write to {directory}: {base} is not a folder"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"cannot write to {directory}: {base} is not writable"
    return None


def output_file_problem(path: Path) -> str | None:
    """Why `path` cannot be written (its folder created if missing), or None."""
    path = Path(path)
    if path.is_dir():
        return f"cannot write {path}: it is a folder"
    if path.exists() and not os.access(path, os.W_OK):
        return f"cannot write {path}: not writable"
    return output_dir_problem(path.parent)
