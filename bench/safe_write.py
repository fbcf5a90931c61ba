"""Outputs never replace a file bench did not create: the one way every output is written.

`--json`, `--markdown`, `--pytest-benchmark`, the baselines, the report's `index.html` and
its `data/` folder all go through here. A swapped argument (`bench compare A B --json B`)
once turned a measured run into JSON, and `bench report -o DIR` deleted a `DIR/data/` full of
someone's files. The rule that stops both, with one line and exit 2:

- an output path that is one of the command's inputs is refused;
- an existing file is replaced only if bench wrote it there and nobody changed it since.
  "bench wrote it" is recorded in a manifest beside it (`.metalbench-outputs.json`: file
  name → sha256 of the bytes written); a writer may also recognise its own older outputs
  (written before the manifest existed) by a `replaceable` check of their content;
- a symlink is never replaced (it is not ours); a device or FIFO (`/dev/stdout`) is written
  in place, as nothing is replaced.

Writes are atomic: a temporary file in the same folder, fsync, then `os.replace`, so a full
disk or a crash leaves the old file whole and no half-written one in its place.

A leaf module apart from `bench.paths` (it imports nothing else of the project).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from bench.paths import current_umask, output_file_problem
from bench.walk import parquet_files

MANIFEST = ".metalbench-outputs.json"
Replaceable = Callable[[Path], bool]


class OutputRefused(ValueError):
    """An output would replace or overwrite something bench must keep; the message is one line."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict[str, str]:
    """What bench wrote in `folder` (name → sha256); empty when absent or unreadable."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(files, dict) else {}


def write_manifest(folder: Path, files: dict[str, str]) -> None:
    text = json.dumps({"written_by": "metalbench", "files": dict(sorted(files.items()))}, indent=1) + "\n"
    atomic_bytes(folder / MANIFEST, text.encode("utf-8"))


def record(path: Path, digest: str | None = None) -> None:
    """Note in the manifest beside `path` that bench wrote it (with its current content)."""
    path = Path(path)
    files = read_manifest(path.parent)
    files[path.name] = digest or sha256_file(path)
    write_manifest(path.parent, files)


# sha256 of files already hashed, by (device, inode, size, mtime, ctime): a write to the file
# changes its ctime, which no user can set back, so an unchanged key is unchanged bytes. The
# report checks its old data/ before it starts and again before it replaces it; each of
# thousands of copies was hashed twice.
_DIGESTS: dict[tuple[int, ...], str] = {}


def current_digest(path: Path) -> str:
    """sha256 of `path`'s bytes, hashed once while the file is unchanged (`_DIGESTS`)."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def written_by_bench(path: Path, listed: dict[str, str] | None = None) -> bool:
    """`path` is a regular file the manifest beside it (`listed`, when the caller read it
    already) lists with exactly its current bytes."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    expected = (read_manifest(path.parent) if listed is None else listed).get(path.name)
    try:
        return expected is not None and expected == current_digest(path)
    except OSError:
        return False


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def _inputs(inputs: Iterable[Path | str]) -> list[Path]:
    """Every file the command reads: a folder stands for the results files inside it (an
    earlier summary.json beside them is not read, so it may be refreshed)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(parquet_files(item))
        elif item.exists():
            files.append(item)
    return files


def in_place(path: Path) -> bool:
    """A device or FIFO (`/dev/stdout`, a pipe): written into, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def problem(path: Path, inputs: Iterable[Path | str] = (), replaceable: Replaceable | None = None) -> str | None:
    """Why bench must not write `path`, in one line, or None. Asked before the work, and again
    at the moment of writing."""
    path = Path(path)
    if any(same_file(path, f) for f in _inputs(inputs)):
        return f"{path} is one of this command's inputs: not overwritten (choose another output file)"
    if in_place(path):
        return None
    if path.is_symlink():
        return f"{path} is a symlink bench did not make: not replaced (choose another output file)"
    if path.exists() and path.is_file():
        if not (written_by_bench(path) or (replaceable is not None and _safely(replaceable, path))):
            return (f"{path} exists and bench did not write it: not replaced "
                    "(move it away or choose another output file)")
    return output_file_problem(path)


def _safely(check: Replaceable, path: Path) -> bool:
    try:
        return bool(check(path))
    except Exception:  # a content check that cannot read the file says "not ours"
        return False


def check(path: Path, inputs: Iterable[Path | str] = (), replaceable: Replaceable | None = None) -> None:
    """Raise OutputRefused (one line) if `path` must not be written."""
    why = problem(path, inputs, replaceable)
    if why:
        raise OutputRefused(why)


def atomic_bytes(path: Path, data: bytes, before_replace: Callable[[], None] | None = None) -> None:
    """Temporary file beside `path`, fsync, rename over it. Any failure (a full disk) leaves
    the old file as it was and no temporary file behind; the OSError names `path` (or the
    file `before_replace` failed on). `before_replace` runs once the new bytes are durable and
    before they take the name: the report swaps its new data/ in there, so a failure up to
    that point leaves the old page and its data whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp's 0600 would hide the output from a shared folder
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except OSError as exc:  # the temporary name means nothing to a user: name `path`
        named = exc.filename if exc.filename not in (None, tmp) else str(path)
        raise OSError(exc.errno, exc.strerror or str(exc), named) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes(path: Path | str, data: bytes, inputs: Iterable[Path | str] = (),
                replaceable: Replaceable | None = None, manifest: bool = True) -> Path:
    """Write `data` to `path` under the rule above, atomically, and record it as bench's."""
    path = Path(path)
    check(path, inputs, replaceable)
    if in_place(path):
        with open(path, "wb") as fh:
            fh.write(data)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_bytes(path, data)
    if manifest:
        record(path, hashlib.sha256(data).hexdigest())
    return path


def write_text(path: Path | str, text: str, inputs: Iterable[Path | str] = (),
               replaceable: Replaceable | None = None, manifest: bool = True) -> Path:
    return write_bytes(path, text.encode("utf-8"), inputs, replaceable, manifest)


def folder_problem(folder: Path, replaceable: Replaceable | None = None) -> str | None:
    """Why bench must not replace the folder `folder` wholesale (the report's `data/`), or None:
    it may, if it is absent, or a real folder whose manifest lists every file in it with its
    current bytes (or one `replaceable` recognises as an older bench output)."""
    folder = Path(folder)
    if not (folder.exists() or folder.is_symlink()):
        return None
    if folder.is_symlink() or not folder.is_dir():
        return f"{folder} exists and is not a folder bench wrote: not replaced (move it away or choose another -o)"
    if replaceable is not None and _safely(replaceable, folder):
        return None
    listed = read_manifest(folder)
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir() or p.is_symlink()}
    present.discard(MANIFEST)
    if not present:  # an empty folder holds nothing to lose
        return None
    # the manifest read once, not once per file (thousands of copies: its JSON parsed thousands of times)
    foreign = sorted(n for n in present if n not in listed or not written_by_bench(folder / n, None if "/" in n else listed))
    if foreign:
        example = f" ({', '.join(foreign[:3])}{', …' if len(foreign) > 3 else ''})" if foreign else ""
        return (f"{folder} holds files bench did not write{example}: not replaced "
                "(move them away or choose another -o)")
    return None
