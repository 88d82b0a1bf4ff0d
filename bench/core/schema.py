"""The results schema: every column of every CSV a run writes, with its unit and meaning.

The writers (bench.run.rundir, bench.analysis.quality) take their column lists from here,
the readers (report, compare) check a run's layout version here, and the README's column
list is tested against it. A change of columns is a new SCHEMA_VERSION, with a line in
LAYOUTS saying what changed, so that old runs stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 2
LAYOUTS = {  # version -> what it added; runs before version 2 carry no schema_version in env.json
    0: "the first layout: no device-count columns",
    1: "devices and per_device_batch in every table, speedup_vs_1 in timings.csv",
    2: "schema_version in env.json; repeat in timings.csv; blocks.csv (every timed block)",
}


@dataclass(frozen=True)
class Column:
    name: str
    unit: str  # "" for names, counts and flags
    meaning: str


def _cols(*rows: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*r) for r in rows)


SETUP = _cols(
    ("backend", "", "framework backend: torch, tf or jax"),
    ("mode", "", "the backend's execution mode (eager, compile, graph, xla, jit, scan)"),
    ("algo", "", "training objective: gan, wgan or wgan_gp"),
    ("arch", "", "network pair (generator and critic)"),
    ("dataset", "", "training data set"),
    ("batch_size", "samples", "global batch per critic or generator update"),
    ("devices", "", "data-parallel device count"),
)
SEED = _cols(("seed", "", "seed of the NumPy init and input stream"))
REPEAT = _cols(("repeat", "", "round of an interleaved --repeats run: 0 trains every step and is scored; "
                              "later rounds only time blocks"))

TABLES: dict[str, tuple[Column, ...]] = {
    "losses.csv": SETUP + SEED + _cols(
        ("step", "", "generator iteration, from 0"),
        ("d_loss", "", "critic loss of the step's last critic update, λ·gp included"),
        ("g_loss", "", "generator loss"),
        ("w_estimate", "", "mean D(real) − mean D(fake) (Wasserstein estimate); empty for gan"),
        ("gp", "", "unweighted gradient penalty; empty unless wgan_gp"),
        ("d_real", "", "mean critic output on real samples (a probability for gan)"),
        ("d_fake", "", "mean critic output on generated samples (a probability for gan)"),
    ),
    "timings.csv": SETUP[:2] + _cols(("status", "", "ok, failed, diverged, unavailable or skipped (--budget)"))
    + SETUP[2:] + _cols(
        ("per_device_batch", "samples", "batch_size / devices"),
    ) + SEED + REPEAT + _cols(
        ("steps", "", "generator iterations done"),
        ("device", "", "the device the backend ran on, as it names it"),
        ("framework", "", "the framework's import name"),
        ("framework_version", "", "its version"),
        ("compile_s", "s", "first call's excess over a steady block: tracing and compilation"),
        ("step_ms_median", "ms", "median time per generator iteration over the timed blocks"),
        ("step_ms_min", "ms", "fastest timed block, per generator iteration"),
        ("step_ms_max", "ms", "slowest timed block, per generator iteration"),
        ("samples_per_s", "1/s", "batch_size × n_critic / step_ms_median: real examples through the critic"),
        ("speedup_vs_1", "", "the one-device row's step_ms_median over this row's; empty without one"),
        ("timed_steps", "", "generator iterations in the timed blocks (after warm-up)"),
        ("gflops_per_step", "GFLOP", "analytic matmul FLOPs of one generator iteration"),
        ("achieved_gflops", "GFLOP/s", "gflops_per_step / median step time"),
        ("peak_gflops", "GFLOP/s", "fp32 matmul peak measured once by the task's worker, after its first training"),
        ("pct_of_peak", "%", "achieved_gflops / peak_gflops"),
        ("peak_mem_mb", "MiB", "the task's peak resident memory on a CPU; on a GPU the allocator's peak since "
         "its worker started"),
        ("threads", "", "compute threads the framework used"),
        ("precision", "", "float precision in force (fp32, tf32, fp64)"),
        ("note", "", "what ran (compiled regions, engines) and any error"),
    ),
    "quality.csv": SETUP + SEED + _cols(
        ("step", "", "generator iterations trained when the samples were drawn"),
        ("wall_s", "s", "training seconds until then (timed blocks only, sampling not counted)"),
        ("metric", "", "quality metric name (bench.analysis.quality)"),
        ("value", "", "its value, in the metric's own unit"),
    ),
    "blocks.csv": SETUP + SEED + REPEAT + _cols(
        ("start", "", "first generator iteration of the block"),
        ("steps", "", "generator iterations in the block"),
        ("ms_per_step", "ms", "the block's wall time per generator iteration (device synchronised)"),
        ("timed", "", "1 if the block counts in the step-time statistics (starts after warm-up), else 0"),
    ),
}


def names(table: str) -> tuple[str, ...]:
    return tuple(c.name for c in TABLES[table])


class UnknownSchema(ValueError):
    """A run directory written by a newer ganbench than this one."""


def version(run_dir: Path, env: dict) -> int:
    """The layout version of a run directory: env.json's schema_version, or for older runs
    (none recorded) 1 when its tables have the device-count columns, else 0.
    UnknownSchema for a version newer than this code reads."""
    v = env.get("schema_version")
    if v is None:
        header = next((f.open().readline() for f in (run_dir / "timings.csv", run_dir / "losses.csv")
                       if f.is_file()), "")
        return 1 if "devices" in header.strip().split(",") else 0
    if not isinstance(v, int) or v > SCHEMA_VERSION or v < 0:
        raise UnknownSchema(f"{run_dir} has results schema version {v!r}; this ganbench reads versions up to "
                            f"{SCHEMA_VERSION}: update ganbench to read it")
    return v


def markdown() -> str:
    """The README's column list: each table's columns in order, then every column once with its
    unit and meaning (tests keep the README in step with this)."""
    out = [f"* `{table}`: {', '.join(c.name for c in cols)}" for table, cols in TABLES.items()]
    out += ["", "| column | unit | meaning | in |", "|---|---|---|---|"]
    seen: dict[Column, list[str]] = {}
    for table, cols in TABLES.items():
        for c in cols:
            seen.setdefault(c, []).append(table.removesuffix(".csv"))
    out += [f"| `{c.name}` | {c.unit} | {c.meaning} | {', '.join(t)} |" for c, t in seen.items()]
    return "\n".join(out) + "\n"
