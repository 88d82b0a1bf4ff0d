"""report.md for one or several run directories: plots, timing, parity, quality, environment.

`build([run_dir], run_dir)` writes the report beside a run's CSVs, its figures in plots/.
Several run directories (a CPU run and a GPU run, say) merge into one comparison whose rows
carry each run's label: its device, or its directory name when devices repeat. Rows are
grouped by setup (algo / arch / data set / batch), so a suite's many setups and runs of
different setups stay apart. Whatever a run lacks (quality.csv of an older run, the losses
of a failed backend, env.json) is left out of the report, never an error.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis import plots
from bench.core import data as datasets
from bench.core.files import ENCODING, read_text, write_atomic
from bench.core.spec import RunSpec

REFERENCE = ("torch", "eager")
LOSS_METRICS = ("d_loss", "g_loss", "w_estimate", "gp", "d_real", "d_fake")
REL_FLOOR = 1e-3  # relative to |reference|, at least this fraction of its largest |value| (zero crossings)
KEYS = ["run", "backend", "mode"]
SETUP_COLUMNS = ("algo", "arch", "dataset", "batch_size")
TIMING_STATS = ("compile_s", "step_ms_median", "step_ms_min", "step_ms_max", "samples_per_s", "achieved_gflops",
                "pct_of_peak", "peak_mem_mb", "peak_rss_mb")  # those a run's timings.csv has
ENV_KEYS = ("command", "complete", "device", "gpu", "cpu", "cpu_count", "python", "platform", "git_commit")
CRITIC_PARAM = re.compile(r"^D\.\d+\.[wb]$")  # canonical critic weights, no optimizer slots


@dataclass(frozen=True)
class Run:
    path: Path
    label: str
    env: dict
    specs: tuple[RunSpec, ...]  # one per setup; empty without env.json
    tables: dict[str, pd.DataFrame]  # timings, losses, quality; empty frames where absent


# ---- loading -----------------------------------------------------------------------------

class ReportError(ValueError):
    """A run directory's table that cannot be read: named, with what is wrong with it."""


NEEDED = ("backend", "mode")  # the columns every table is grouped by


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        t = pd.read_csv(path, encoding=ENCODING)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ReportError(f"{path} is not a readable CSV table ({str(e).strip().splitlines()[-1]})") from None
    missing = [c for c in NEEDED if c not in t]
    if missing:
        raise ReportError(f"{path} is not a ganbench table: no {', '.join(missing)} column (its header is "
                          f"{', '.join(map(str, t.columns))[:200]})")
    return t


def _read_env(path: Path) -> dict:
    try:
        return json.loads(read_text(path / "env.json"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _specs(env: dict) -> tuple[RunSpec, ...]:
    """The run's setups, from each env.json layout so far: spec, plan.spec, plan.specs."""
    plan = env.get("plan", {})
    found = plan.get("specs") or [s for s in (env.get("spec"), plan.get("spec")) if s][:1]
    return tuple(RunSpec.from_json(json.dumps(s)) for s in found)


def setup_name(algo: str, arch: str, dataset: str, batch_size) -> str:
    return f"{algo} / {arch} / {dataset} / batch {batch_size}"


def _spec_setup(spec: RunSpec) -> str:
    return setup_name(spec.algo.name, spec.arch, spec.dataset, spec.batch_size)


def _with_setup(t: pd.DataFrame, label: str, specs: tuple[RunSpec, ...]) -> pd.DataFrame:
    """Add run and setup columns; setup columns a CSV lacks (older runs) come from the run's spec."""
    t.insert(0, "run", label)
    s = specs[0] if specs else None
    fill = {"algo": s.algo.name, "arch": s.arch, "dataset": s.dataset, "batch_size": s.batch_size,
            "seed": s.seed} if s else {}
    for col in (*SETUP_COLUMNS, "seed"):
        if col not in t:
            t[col] = fill.get(col, 0 if col == "seed" else "?")
    if "devices" in t:  # a data-parallel row is its own series: jit on 2 devices is not jit on 1
        n = pd.to_numeric(t["devices"], errors="coerce").fillna(1).astype(int)
        t["mode"] = [m if k == 1 else f"{m}@{k}dev" for m, k in zip(t["mode"], n, strict=True)]
    batch = pd.to_numeric(t["batch_size"], errors="coerce").astype("Int64").astype(str)
    t["setup"] = [setup_name(*row) for row in zip(t["algo"], t["arch"], t["dataset"], batch, strict=True)]
    return t


def load_runs(run_dirs: list[Path]) -> list[Run]:
    envs = [_read_env(Path(d)) for d in run_dirs]
    devices = [e.get("device", "?") for e in envs]
    runs = []
    for d, env, device in zip(map(Path, run_dirs), envs, devices, strict=True):
        label = device if devices.count(device) == 1 else d.name
        specs = _specs(env)
        tables = {n: _read_csv(d / f"{n}.csv") for n in ("timings", "losses", "quality")}
        tables = {n: t if t.empty else _with_setup(t, label, specs) for n, t in tables.items()}
        runs.append(Run(d, label, env, specs, tables))
    return runs


def _merged(runs: list[Run], name: str) -> pd.DataFrame:
    """One table over all runs, with a `series` column naming each (run,) backend and mode."""
    frames = [r.tables[name] for r in runs if not r.tables[name].empty]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    prefix = df["run"] + "/" if len(runs) > 1 else ""
    df["series"] = prefix + df["backend"] + "-" + df["mode"]
    return df


# ---- tables --------------------------------------------------------------------------------

def _fmt(x) -> str:
    if isinstance(x, float | np.floating):
        return "" if np.isnan(x) else f"{x:.4g}"
    return str(x)


def _mean_std(values: pd.Series) -> str:
    """The value, or mean ± sample std over seeds."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return ""
    return _fmt(v.iloc[0]) if len(v) == 1 else f"{_fmt(v.mean())} ± {_fmt(v.std())}"


def _cell(x) -> str:
    text = "" if x is None or (isinstance(x, float) and np.isnan(x)) else _fmt(x)
    return text.replace("|", "/").replace("\n", " ")


def markdown(df: pd.DataFrame, empty: str = "none") -> str:
    if df.empty:
        return f"_{empty}_\n"
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(_cell(x) for x in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def timing_table(timings: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (run, backend, mode), g in timings.groupby(KEYS, sort=False):
        notes = [n for n in g.get("note", pd.Series(dtype=str)).dropna().astype(str) if n]
        rows.append({"run": run, "backend": backend, "mode": mode, "device": g["device"].iloc[0],
                     "status": "/".join(dict.fromkeys(g["status"].astype(str))), "seeds": g["seed"].nunique(),
                     **{c: _mean_std(g[c]) for c in TIMING_STATS if c in g},
                     "note": notes[0][:120] if notes else ""})
    return pd.DataFrame(rows)


def parity_table(losses: pd.DataFrame) -> pd.DataFrame:
    """Per backend/mode and loss metric, "max abs / max rel" difference from torch-eager over
    the steps both have. The reference is the first run (in the order given) holding
    torch-eager for the same setup and seed; over several seeds the worst is reported."""
    metrics = [m for m in LOSS_METRICS if m in losses and losses[m].notna().any()]
    rows = []
    for _, g in losses.groupby(["setup", "seed"], sort=False):
        is_ref = (g["backend"] == REFERENCE[0]) & (g["mode"] == REFERENCE[1])
        if not is_ref.any():
            continue
        ref_run = g.loc[is_ref, "run"].iloc[0]
        ref = g[is_ref & (g["run"] == ref_run)].set_index("step")[metrics]
        for key, s in g.groupby(KEYS, sort=False):
            if key == (ref_run, *REFERENCE):
                continue
            s = s.set_index("step")[metrics]
            common = s.index.intersection(ref.index)
            diff = (s.loc[common] - ref.loc[common]).abs()
            scale = ref.loc[common].abs()
            rel = diff / scale.clip(lower=REL_FLOOR * scale.max(), axis=1)
            rows.append({**dict(zip(KEYS, key, strict=True)), "reference": f"{ref_run}/torch-eager",
                         "steps": len(common), **{f"{m} abs": diff[m].max() for m in metrics},
                         **{f"{m} rel": rel[m].max() for m in metrics}})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    worst = {c: "max" for c in df.columns if c.endswith((" abs", " rel"))}
    out = df.groupby([*KEYS, "reference"], sort=False).agg({"steps": "min", **worst}).reset_index()
    for m in metrics:
        out[f"{m} (abs / rel)"] = [f"{a:.2g} / {r:.2g}" for a, r in zip(out.pop(f"{m} abs"), out.pop(f"{m} rel"),
                                                                         strict=True)]
    return out


def quality_table(quality: pd.DataFrame) -> pd.DataFrame:
    """Final value (the last evaluated step of each seed) per backend/mode and metric."""
    last = quality.loc[quality.groupby([*KEYS, "seed", "metric"])["step"].idxmax().sort_values()]
    metrics = list(dict.fromkeys(quality["metric"]))
    rows = []
    for (run, backend, mode), g in last.groupby(KEYS, sort=False):
        rows.append({"run": run, "backend": backend, "mode": mode, "step": g["step"].max(),
                     "seeds": g["seed"].nunique(),
                     **{m: _mean_std(g.loc[g["metric"] == m, "value"]) for m in metrics}})
    return pd.DataFrame(rows)


def runs_table(runs: list[Run], timings: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in runs:
        t = timings[timings["run"] == r.label] if not timings.empty else timings
        setups = list(dict.fromkeys(map(_spec_setup, r.specs)))
        rows.append({"run": r.label, "directory": r.path.name,
                     "setup": setups[0] if len(setups) == 1 else f"{len(setups)} setups",
                     "steps": r.specs[0].steps if r.specs else "",
                     "seeds": ",".join(map(str, sorted(t["seed"].unique()))) if not t.empty else "",
                     "device": r.env.get("gpu") or r.env.get("device", ""), "complete": r.env.get("complete", "")})
    return pd.DataFrame(rows)


def environment_table(runs: list[Run]) -> pd.DataFrame:
    rows: dict[str, dict[str, str]] = {"directory": {r.label: str(r.path) for r in runs}}
    for k in ENV_KEYS:
        rows[k] = {r.label: r.env.get(k, "") for r in runs}
    for r in runs:
        for name, version in r.env.get("versions", {}).items():
            rows.setdefault(name, {})[r.label] = version
        for tag, info in r.env.get("backends", {}).items():
            rows.setdefault(f"backend {tag}", {})[r.label] = ", ".join(f"{k} {v}" for k, v in info.items() if v)
    df = pd.DataFrame.from_dict(rows, orient="index", columns=[r.label for r in runs]).fillna("")
    return df.rename_axis("").reset_index()


# ---- figures over all runs, one per setup ----------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def _seed_means(g: pd.DataFrame, keys: list[str], values: list[str]) -> dict[str, pd.DataFrame]:
    """series -> its rows averaged over seeds at each key."""
    return {s: gs.groupby(keys, as_index=False)[values].mean() for s, gs in g.groupby("series", sort=False)}


def step_time_figure(timings: pd.DataFrame, path: Path, title: str) -> bool:
    ok = timings[(timings["status"] == "ok") & timings["step_ms_median"].notna()]
    if ok.empty:
        return False
    bars = ok.groupby("series", sort=False).agg(step_ms_median=("step_ms_median", "mean"),
                                                step_ms_min=("step_ms_min", "min"), step_ms_max=("step_ms_max", "max"))
    plots.step_times(bars.reset_index().rename(columns={"series": "label"}), path)
    return True


def loss_figure(losses: pd.DataFrame, path: Path, title: str) -> bool:
    plots.loss_curves(_seed_means(losses, ["step"], [m for m in LOSS_METRICS if m in losses]), path, title)
    return True


def quality_figure(quality: pd.DataFrame, path: Path, title: str) -> bool:
    plots.quality_curves(_seed_means(quality, ["step", "metric"], ["wall_s", "value"]), path, title)
    return True


Table = Callable[[pd.DataFrame], pd.DataFrame]
Figure = Callable[[pd.DataFrame, Path, str], bool]


def setup_section(df: pd.DataFrame, table: Table, figure: Figure, stem: str, out_dir: Path,
                  empty: str) -> str:
    """A table and a figure per setup, under a sub-heading when there are several setups."""
    if df.empty:
        return f"_{empty}_\n\n"
    parts, many = [], df["setup"].nunique() > 1
    for setup, g in df.groupby("setup", sort=False):
        parts.append(f"### {setup}\n\n" if many else "")
        parts.append(markdown(table(g), "nothing to compare") + "\n")
        path = out_dir / "plots" / f"{stem}-{_slug(setup)}.png"
        if figure(g, path, setup):
            parts.append(f"![{setup}]({path.relative_to(out_dir).as_posix()})\n\n")
    return "".join(parts)


# ---- figures per run and setup: samples, interpolation, critic weights ---------------------------

@functools.lru_cache(maxsize=4)
def _real(dataset: str, data_dir: str | None) -> np.ndarray | None:
    """A fixed random 2,000 of a data set, or None where it cannot be loaded here."""
    try:
        x = datasets.load(dataset, data_dir).x
    except (datasets.DataError, OSError):
        return None
    return x[np.random.default_rng(0).permutation(len(x))[:2000]]


def _jobs(run: Run) -> dict[str, dict[str, tuple[str, RunSpec]]]:
    """setup -> backend-mode -> (tag, spec) of its lowest seed, from the run's raw/*.job.json, in run order."""
    out: dict[str, dict[str, tuple[str, RunSpec]]] = {}
    for f in sorted((run.path / "raw").glob("*.job.json"), key=lambda p: p.stat().st_mtime_ns):
        job = json.loads(read_text(f))
        spec = RunSpec.from_json(job["spec"])
        series = out.setdefault(_spec_setup(spec), {})
        label = f"{job['backend']}-{job['mode']}"
        if label not in series or spec.seed < series[label][1].seed:
            series[label] = (job["tag"], spec)
    return out


def _critic_weights(path: Path) -> np.ndarray:
    with np.load(path) as f:
        return np.concatenate([f[k].ravel() for k in f.files if CRITIC_PARAM.match(k)])


@dataclass(frozen=True)
class RunFigure:
    heading: str
    text: str
    file: str  # "<folder>/{tag}<suffix>"
    load: Callable[[Path], np.ndarray]
    draw: Callable[[dict[str, np.ndarray], RunSpec, Path, str], None]
    wanted: Callable[[RunSpec], bool] = lambda spec: True


RUN_FIGURES = (
    RunFigure("Samples", "G(z) for one fixed z shared by all backends, beside the real data.",
              "samples/{tag}.npy", np.load,
              lambda a, spec, path, title: plots.samples_side_by_side(a, _real(spec.dataset, spec.data_dir), path,
                                                                       title)),
    RunFigure("Latent interpolation", "G(z) along straight lines between fixed random z.",
              "samples/{tag}.interp.npy", np.load,
              lambda a, spec, path, title: plots.interpolation(a, path, _real(spec.dataset, spec.data_dir))),
    RunFigure("Critic weights", "Final critic weights of weight-clipping runs; dashed: the clip bounds.",
              "raw/{tag}.final.npz", _critic_weights,
              lambda a, spec, path, title: plots.critic_histograms(a, spec.algo.clip, path),
              lambda spec: bool(spec.algo.clip)),
)


def run_figures(fig: RunFigure, runs: list[Run], out_dir: Path) -> str:
    """fig for each setup, one panel per run's backend/mode whose file exists; "" if none does."""
    by_setup: dict[str, tuple[RunSpec, dict[str, np.ndarray]]] = {}
    for run in runs:
        for setup, series in _jobs(run).items():
            for label, (tag, spec) in series.items():
                f = run.path / fig.file.format(tag=tag)
                if fig.wanted(spec) and f.exists():
                    name = f"{run.label}/{label}" if len(runs) > 1 else label
                    by_setup.setdefault(setup, (spec, {}))[1][name] = fig.load(f)
    parts = []
    for setup, (spec, arrays) in by_setup.items():
        path = out_dir / "plots" / f"{_slug(fig.heading).lower()}-{_slug(setup)}.png"
        fig.draw(arrays, spec, path, setup)
        parts.append(f"![{setup}]({path.relative_to(out_dir).as_posix()})\n\n")
    return f"## {fig.heading}\n\n{fig.text}\n\n" + "".join(parts) if parts else ""


# ---- the report ----------------------------------------------------------------------------

def build(run_dirs: list[Path], out_dir: Path) -> Path:
    """Write out_dir/report.md (figures in out_dir/plots/) comparing the given runs; returns its path."""
    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    runs = load_runs(run_dirs)
    timings, losses, quality = (_merged(runs, n) for n in ("timings", "losses", "quality"))
    md = [
        "# ganbench report\n\n", markdown(runs_table(runs, timings)),
        "\n## Step time\n\nms per generator step (n_critic critic updates + 1 generator update): median, min and "
        "max over the timed blocks after warm-up; mean ± std over seeds where a run has several.\n\n",
        setup_section(timings, timing_table, step_time_figure, "step_time", out_dir, "no timings.csv"),
        f"## Losses and parity against {'-'.join(REFERENCE)}\n\nMax absolute / max relative difference of the "
        f"per-step losses over the steps both have; relative to |reference|, floored at {REL_FLOOR:g} of its "
        "largest value so zero crossings do not blow it up; worst seed. Curves in parity lie on top of each other "
        "(drawn thick to thin); they are means over seeds.\n\n",
        setup_section(losses, parity_table, loss_figure, "losses", out_dir, "no losses.csv"),
        "## Quality\n\nFinal value per metric (mean ± std over seeds), and each metric against training seconds; "
        "the metrics are defined in bench/quality.py.\n\n",
        setup_section(quality, quality_table, quality_figure, "quality", out_dir, "no quality.csv in these runs"),
        *(run_figures(fig, runs, out_dir) for fig in RUN_FIGURES),
        "## Environment\n\n", markdown(environment_table(runs)),
    ]
    path = out_dir / "report.md"
    write_atomic(path, "".join(md))  # an existing report stays whole until the new one is
    return path
