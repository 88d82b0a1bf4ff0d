"""Writing files so that an interruption or a full disk leaves the previous good state.

Every file ganbench writes goes through here. `replacing(path)` hands out a temporary path
beside the target; the writer fills it, it is fsynced and renamed over the target in one
step, and on any failure (ENOSPC, a signal's exception) it is removed and the target is
untouched. `append_lines` appends CSV lines that land whole or not at all: the header
first when the table is new or empty, and a failed write cuts the file back to its old
size. Text is UTF-8 whatever the locale.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ENCODING = "utf-8"


def _encode(text: str) -> bytes:
    """UTF-8; a path that came in undecodable (argv in an ASCII locale) goes back out as its own bytes."""
    return text.encode(ENCODING, "surrogateescape")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable; some file systems cannot open or sync a directory, and then it
    is as durable as they make it."""
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


def _file_mode() -> int:
    """What open() gives a new file under this process's umask (read once, at import, when
    nothing else runs: reading it means setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _file_mode()


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path in path's folder (same suffix, so numpy and matplotlib keep the name);
    once the block ends it replaces path, durably. An exception leaves path as it was."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    tmp = Path(name)
    try:  # mkstemp's 0600 would hide results from the rest of a team: a new file's usual mode
        os.fchmod(fd, _MODE)
    finally:
        os.close(fd)
    try:
        yield tmp
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def make_dir(path: Path) -> str | None:
    """Make the directory `path` (and its parents) before any work that will write there, so
    that a path that cannot take files is a usage error now, not a lost result later: None
    once it exists and is writable, else why not."""
    home = next((d for d in (path, *path.parents) if d.exists()), None)
    if home is not None and not home.is_dir():
        return f"{home} is a file"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return e.strerror or str(e)
    return None if os.access(path, os.W_OK | os.X_OK) else f"{path} is not writable"


def write_atomic(path: Path, data: str | bytes) -> None:
    """The whole of data in path, or (on any failure) path as it was."""
    with replacing(path) as tmp:
        tmp.write_bytes(_encode(data) if isinstance(data, str) else data)


def save_arrays(path: Path, arrays: np.ndarray | dict[str, np.ndarray]) -> None:
    """np.save of one array or np.savez of a dict of them, whole or (on any failure) not at all."""
    with replacing(path) as tmp:
        if isinstance(arrays, dict):
            np.savez(tmp, **arrays)
        else:
            np.save(tmp, arrays)


def read_text(path: Path) -> str:
    return Path(path).read_text(encoding=ENCODING)


def append_lines(path: Path, header: str, lines: str) -> None:
    """Append whole lines to a text table, with its header first if the file is new or empty.
    All of it lands or none: on a failed or short write the file is cut back to its size before.
    A half line left at the end by a process killed mid-write (SIGKILL, power loss) is dropped
    first, so the table never holds a torn row."""
    with open(path, "ab", buffering=0) as f:  # unbuffered: nothing is left to flush after a cut
        size = _whole_lines(f)
        data = _encode((header if size == 0 else "") + lines)
        try:
            view = memoryview(data)
            while view:  # a raw write may take only part
                view = view[f.write(view):]
            os.fsync(f.fileno())
        except BaseException:
            os.ftruncate(f.fileno(), size)
            raise


def _whole_lines(f) -> int:
    """The length of f up to its last newline, after cutting off anything past it."""
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        return 0
    with open(f.name, "rb") as r:
        r.seek(max(0, size - 1))
        if r.read(1) == b"\n":
            return size
        r.seek(0)
        whole = r.read().rfind(b"\n") + 1
    os.ftruncate(f.fileno(), whole)
    return whole
