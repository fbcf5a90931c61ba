"""Reading a small file the user named (a `--model` folder's config.json, a confirm summary).

`open()` on a FIFO blocks until a writer appears, and a device file can be endless, so a
`config.json` that was a FIFO hung `bench run` before any work with no time-out. Whatever
is not a regular file is refused by its type, from `os.stat`, before it is opened. A leaf
module: it imports nothing of the project.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# A config or a summary is kilobytes; anything far larger is not one (and is not read whole).
MAX_BYTES = 64 * 1024 * 1024


def read_regular_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The text of `path` if it is a regular file (after links) of at most `max_bytes`;
    OSError naming what it is otherwise. Bytes that are not UTF-8 raise ValueError."""
    path = Path(path)
    st = os.stat(path)  # FileNotFoundError / PermissionError name the path themselves
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        raise OSError(f"{path} is {kind}, expected a regular file")
    if st.st_size > max_bytes:
        raise OSError(f"{path} is {st.st_size} bytes, more than the {max_bytes} a text file like it can be")
    # O_NONBLOCK: if the name was swapped for a FIFO after the stat, open() still returns
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read(max_bytes + 1).decode("utf-8")
