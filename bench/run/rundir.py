"""The run directory: CSV tables, env.json and the summary, written as results arrive.

Rows are appended one whole line per write and flushed, so a run that is interrupted
leaves valid CSVs. The columns are bench.core.schema's, the contract the README lists.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from bench.core.schema import names

LOSS_COLUMNS, TIMING_COLUMNS, BLOCK_COLUMNS = names("losses.csv"), names("timings.csv"), names("blocks.csv")


class RunDir:
    def __init__(self, path: Path, resume: bool = False) -> None:
        if not resume and path.exists() and any(path.iterdir()):
            raise FileExistsError(f"{path} exists and is not empty; choose another --out")
        self.path = path
        for sub in ("samples", "raw", "logs", "checkpoints"):
            (path / sub).mkdir(parents=True, exist_ok=True)

    def append(self, name: str, columns: tuple[str, ...], rows: list[dict]) -> None:
        f = self.path / name
        buf = io.StringIO()
        w = csv.DictWriter(buf, columns, lineterminator="\n")
        if not f.exists():
            w.writeheader()
        for r in rows:
            w.writerow({c: _cell(r.get(c)) for c in columns})
        with f.open("a") as out:  # one write per batch of whole lines
            out.write(buf.getvalue())
            out.flush()

    def write_json(self, name: str, obj: dict) -> None:
        tmp = self.path / (name + ".tmp")
        tmp.write_text(json.dumps(obj, indent=1, default=str))
        tmp.replace(self.path / name)  # atomic: a reader never sees half a file


def _cell(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.9g}"
    return v
