"""The run directory: CSV tables, env.json and the summary, written as results arrive.

Rows are appended whole or not at all and every other file is replaced in one rename
(bench.core.files), so a run that is interrupted, or finds the disk full, leaves valid
files. The columns are bench.core.schema's, the contract the README lists.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from pathlib import Path

from bench.core.files import ENCODING, append_lines, write_atomic
from bench.core.schema import names

LOSS_COLUMNS, TIMING_COLUMNS, BLOCK_COLUMNS = names("losses.csv"), names("timings.csv"), names("blocks.csv")



SUBDIRS = ("samples", "raw", "logs", "checkpoints")


def is_run_dir(path: Path) -> bool:
    return (path / "env.json").is_file() and all((path / d).is_dir() for d in SUBDIRS)


class RunDir:
    def __init__(self, path: Path, resume: bool = False) -> None:
        if not resume and path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} exists and is not empty; choose another --out")
        self.path = path
        for sub in SUBDIRS:
            (path / sub).mkdir(parents=True, exist_ok=True)

    def append(self, name: str, columns: tuple[str, ...], rows: list[dict]) -> None:
        append_lines(self.path / name, _csv_text(columns, [], header=True), _csv_text(columns, rows))

    def rows(self, name: str) -> list[dict]:
        return read_rows(self.path / name)

    def keep_rows(self, name: str, keep: Callable[[dict], bool]) -> int:
        """Rewrite a table with only the rows `keep` accepts; returns how many went."""
        f = self.path / name
        if not f.exists():
            return 0
        with f.open(encoding=ENCODING, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
        kept = [r for r in rows if _whole(r) and keep(r)]
        if len(kept) < len(rows):
            self.rewrite(name, tuple(reader.fieldnames or ()), kept)
        return len(rows) - len(kept)

    def rewrite(self, name: str, columns: tuple[str, ...], rows: list[dict]) -> None:
        """The whole table anew, in one rename: a reader never sees half of it."""
        write_atomic(self.path / name, _csv_text(columns, rows, header=True))

    def write_json(self, name: str, obj: dict) -> None:
        write_atomic(self.path / name, json.dumps(obj, indent=1, default=str))


def read_rows(f: Path) -> list[dict]:
    """A table's whole rows (see _whole)."""
    if not f.exists():
        return []
    with f.open(encoding=ENCODING, newline="") as fh:
        return [r for r in csv.DictReader(fh) if _whole(r)]


def _whole(row: dict) -> bool:
    """Not a row torn by a process killed mid-write (fields missing), nor one with extra fields."""
    return None not in row and None not in row.values()


def _csv_text(columns: tuple[str, ...], rows: list[dict], header: bool = False) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    if header:
        w.writeheader()
    for r in rows:
        w.writerow({c: _cell(r.get(c)) for c in columns})
    return buf.getvalue()


def _cell(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.9g}"
    return v
