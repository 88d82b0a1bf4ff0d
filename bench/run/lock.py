"""One ganbench process per run directory: an exclusive flock on DIR/.lock, held for the whole
run or resume. The kernel drops it when the process ends, however it ends (SIGKILL too), so a
stale lock file never blocks a later --resume."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from bench.core.files import ENCODING

LOCK_FILE = ".lock"


class Busy(RuntimeError):
    """Another process holds the run directory."""


@contextlib.contextmanager
def hold(run_dir: Path) -> Iterator[None]:
    with (run_dir / LOCK_FILE).open("a+", encoding=ENCODING) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip()
            raise Busy(f"{run_dir} is in use by another ganbench process{f' (pid {pid})' if pid else ''}; "
                       "wait for it to end (nothing was changed)") from None
        f.truncate(0)  # who holds it, for the message above
        f.write(str(os.getpid()))
        f.flush()
        yield
