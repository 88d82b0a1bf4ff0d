"""The run directory: CSV tables, env.json and the summary, written as results arrive.

Rows are appended one whole line per write and flushed, so a run that is interrupted
leaves valid CSVs. The column lists here are the contract documented in the README.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

LOSS_COLUMNS = ("backend", "mode", "algo", "arch", "dataset", "batch_size", "devices", "seed", "step",
                "d_loss", "g_loss", "w_estimate", "gp", "d_real", "d_fake")
TIMING_COLUMNS = ("backend", "mode", "status", "algo", "arch", "dataset", "batch_size", "devices",
                  "per_device_batch", "seed", "steps", "device", "framework", "framework_version", "compile_s",
                  "step_ms_median", "step_ms_min", "step_ms_max", "samples_per_s", "speedup_vs_1", "timed_steps",
                  "gflops_per_step", "achieved_gflops", "peak_gflops", "pct_of_peak", "peak_mem_mb", "threads",
                  "precision", "note")


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
