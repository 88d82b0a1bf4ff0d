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

from bench.analysis import plots, stats, tables
from bench.analysis.tables import cell
from bench.core import data as datasets
from bench.core import schema
from bench.core.files import ENCODING, read_text, write_atomic
from bench.core.gan import METRICS
from bench.core.spec import RunSpec

REFERENCE = ("torch", "eager")
REL_FLOOR = 1e-3  # relative to |reference|, at least this fraction of its largest |value| (zero crossings)
PARITY_TOL = 1e-4  # relative: the parity tests' bound on the losses over their first steps
KEYS = ["run", "backend", "mode"]
SETUP_COLUMNS = ("algo", "arch", "dataset", "batch_size")
TIMING_STATS = ("compile_s", "step_ms_median", "step_ms_min", "step_ms_max", "samples_per_s", "achieved_gflops",
                "pct_of_peak", "peak_mem_mb")  # those a run's timings.csv has
ENV_KEYS = ("command", "complete", "device", "gpu", "cpu", "cpu_count", "python", "platform", "git_commit")
CRITIC_PARAM = re.compile(r"^D\.\d+\.[wb]$")  # canonical critic weights, no optimizer slots


@dataclass(frozen=True)
class Run:
    path: Path
    label: str
    env: dict
    specs: tuple[RunSpec, ...]  # one per setup; empty without env.json
    tables: dict[str, pd.DataFrame]  # timings, losses, quality, blocks; empty frames where absent
    version: int  # results schema version (bench.core.schema)


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


TABLES = ("timings", "losses", "quality", "blocks")


def load_runs(run_dirs: list[Path]) -> list[Run]:
    """Every run directory's tables, in any layout so far; schema.UnknownSchema for a newer one."""
    envs = [_read_env(Path(d)) for d in run_dirs]
    versions = [schema.version(Path(d), env) for d, env in zip(run_dirs, envs, strict=True)]
    devices = [e.get("device", "?") for e in envs]
    runs = []
    for d, env, device, version in zip(map(Path, run_dirs), envs, devices, versions, strict=True):
        label = device if devices.count(device) == 1 else d.name
        specs = _specs(env)
        tables = {n: _read_csv(d / f"{n}.csv") for n in TABLES}
        tables = {n: t if t.empty else _with_setup(t, label, specs) for n, t in tables.items()}
        t = tables["timings"]  # before schema 2 every row was its own (only) round
        t["repeat"] = pd.to_numeric(t["repeat"], errors="coerce").fillna(0).astype(int) if "repeat" in t else 0
        runs.append(Run(d, label, env, specs, tables, version))
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

def _mean_std(values: pd.Series) -> str:
    """The value, or mean ± sample std over seeds."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return ""
    return cell(v.iloc[0]) if len(v) == 1 else f"{cell(v.mean())} ± {cell(v.std())}"


def markdown(df: pd.DataFrame, empty: str = "none") -> str:
    return tables.markdown([str(c) for c in df.columns], df.itertuples(index=False), empty)


ROUND = ("seed", "repeat")  # a round: one process's blocks; seeds train apart, repeats interleave
MEDIAN_CI, VS_FASTEST = "ms/step [95% CI]", "× fastest [95% CI]"  # ms/step: the mean of the rounds' medians


def step_rounds(timings: pd.DataFrame, blocks: pd.DataFrame) -> dict[tuple, dict[tuple, np.ndarray]]:
    """(run, setup, backend, mode) -> {(seed, repeat): ms/step of its timed blocks} for every ok row.
    A row without block times (a run before schema 2) gives its median as its round's one value."""
    by_round: dict[tuple, np.ndarray] = {}
    if not blocks.empty:
        timed = blocks[blocks["timed"] == 1]
        by_round = {tuple(k): g["ms_per_step"].to_numpy(float)
                    for k, g in timed.groupby(["run", "setup", "backend", "mode", *ROUND], sort=False)}
    out: dict[tuple, dict[tuple, np.ndarray]] = {}
    ok = timings[(timings["status"] == "ok") & timings["step_ms_median"].notna()]
    for r in ok.itertuples(index=False):
        key, rnd = (r.run, r.setup, r.backend, r.mode), (int(r.seed), int(r.repeat))
        out.setdefault(key, {})[rnd] = by_round.get((*key, *rnd), np.array([float(r.step_ms_median)]))
    return out


def step_ratio(a: dict[tuple, np.ndarray], b: dict[tuple, np.ndarray]) -> stats.Interval:
    """median(a) / median(b); paired round by round where both ran the same rounds side by side."""
    keys = sorted(a)
    paired = sorted(b) == keys
    return stats.ratio([a[k] for k in keys], [b[k] for k in (keys if paired else sorted(b))], paired=paired)


def _fastest(rounds: dict[tuple, dict[tuple, np.ndarray]]) -> dict[tuple, stats.Interval]:
    return {k: stats.median(list(v.values())) for k, v in rounds.items()}


def timing_table(timings: pd.DataFrame, blocks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per backend and mode: the step time (each round's median over its timed blocks, averaged
    over rounds) with its bootstrap interval, its ratio to the fastest row of the setup, and a
    verdict that calls it a difference only when the ratio's interval excludes 1."""
    rounds = step_rounds(timings, pd.DataFrame() if blocks is None else blocks)
    medians = _fastest(rounds)
    best = min(medians, key=lambda k: medians[k].value, default=None)
    rows = []
    for (run, backend, mode), g in timings.groupby(KEYS, sort=False):
        notes = [n for n in g.get("note", pd.Series(dtype=str)).dropna().astype(str) if n]
        key = (run, g["setup"].iloc[0], backend, mode)
        row = {"run": run, "backend": backend, "mode": mode, "device": g["device"].iloc[0],
               "status": "/".join(dict.fromkeys(g["status"].astype(str))), "seeds": g["seed"].nunique(),
               "rounds": len(rounds.get(key, {})), MEDIAN_CI: str(medians[key]) if key in medians else "",
               "timed_steps": int(pd.to_numeric(g["timed_steps"], errors="coerce").sum()) if "timed_steps" in g else "",
               VS_FASTEST: "", "verdict": ""}
        if key in rounds and best is not None:
            r = step_ratio(rounds[key], rounds[best])
            row[VS_FASTEST] = "fastest" if key == best else str(r)
            row["verdict"] = "" if key == best else stats.verdict(r)
        row.update({c: _mean_std(g[c]) for c in TIMING_STATS if c in g and c != "step_ms_median"})
        rows.append({**row, "note": notes[0][:120] if notes else ""})
    return pd.DataFrame(rows)


def parity_diffs(losses: pd.DataFrame) -> pd.DataFrame:
    """Per backend/mode, the steps it shares with torch-eager, how many of them from the first
    stay within PARITY_TOL relative in every metric, and per loss metric the max abs and max
    rel difference over all of them (columns "<metric> abs" / "rel").
    The reference is the first run (in the order given) holding torch-eager for the same
    setup and seed; over several seeds the worst is reported."""
    metrics = [m for m in METRICS if m in losses and losses[m].notna().any()]
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
            off = (rel.max(axis=1) > PARITY_TOL).to_numpy()
            rows.append({**dict(zip(KEYS, key, strict=True)), "reference": f"{ref_run}/torch-eager",
                         "steps": len(common), "steps within tol": int(off.argmax()) if off.any() else len(common),
                         **{f"{m} abs": diff[m].max() for m in metrics},
                         **{f"{m} rel": rel[m].max() for m in metrics}})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    worst = {c: "max" for c in df.columns if c.endswith((" abs", " rel"))}
    return df.groupby([*KEYS, "reference"], sort=False).agg({"steps": "min", "steps within tol": "min",
                                                             **worst}).reset_index()


def parity_table(losses: pd.DataFrame) -> pd.DataFrame:
    """parity_diffs with each metric's "max abs / max rel" in one column."""
    out = parity_diffs(losses)
    metrics = [c[:-4] for c in out.columns if c.endswith(" abs")]
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
    plots.step_times(bars.reset_index().rename(columns={"series": "label"}), path, title)
    return True


def loss_figure(losses: pd.DataFrame, path: Path, title: str) -> bool:
    metrics = [m for m in METRICS if m in losses and losses[m].notna().any()]
    if not metrics:
        return False
    plots.loss_curves(_seed_means(losses, ["step"], metrics), path, title)
    return True


def quality_figure(quality: pd.DataFrame, path: Path, title: str) -> bool:
    if quality["value"].isna().all():
        return False
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
              lambda a, spec, path, title: plots.interpolation(a, path, title, _real(spec.dataset, spec.data_dir))),
    RunFigure("Critic weights", "Final critic weights of weight-clipping runs; dashed: the clip bounds.",
              "raw/{tag}.final.npz", _critic_weights,
              lambda a, spec, path, title: plots.critic_histograms(a, spec.algo.clip, path, title),
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


# ---- the closing summary: the three answers ---------------------------------------------------

SUMMARY_COLUMNS = ("backend", "mode", "status", "rounds", "timed_steps", MEDIAN_CI, VS_FASTEST, "verdict",
                   "compile_s", "achieved_gflops")


def _label(key: tuple, runs: int) -> str:
    return f"{key[0]}/{key[2]} {key[3]}" if runs > 1 else f"{key[2]} {key[3]}"


def speed_answer(timings: pd.DataFrame, blocks: pd.DataFrame) -> list[str]:
    """The fastest mode of each framework, and each one's ratio to the fastest of them."""
    medians = _fastest(rounds := step_rounds(timings, blocks))
    if not medians:
        return ["Speed: no backend finished."]
    per_framework: dict[tuple, tuple] = {}
    for k in sorted(medians, key=lambda k: medians[k].value):
        per_framework.setdefault((k[0], k[2]), k)
    order = list(per_framework.values())
    best, n = order[0], timings["run"].nunique()
    lines = ["Fastest mode of each framework, ms/step [95% CI] (the median of each round's timed blocks, "
             f"averaged over {max(len(rounds[k]) for k in order)} round(s)): "
             + "; ".join(f"{_label(k, n)} {medians[k]}" for k in order) + "."]
    for k in order[1:]:
        r = step_ratio(rounds[k], rounds[best])
        lines.append(f"  {_label(k, n)} / {_label(best, n)}: {r.value:.3g}x [{r.lo:.3g}, {r.hi:.3g}], "
                     f"{stats.verdict(r)}.")
    return lines


def parity_answer(losses: pd.DataFrame) -> list[str]:
    d = parity_diffs(losses) if not losses.empty else pd.DataFrame()
    if d.empty:
        return ["Parity: nothing to compare with torch eager."]
    rel = [c for c in d.columns if c.endswith(" rel")]
    flat = d.melt(id_vars=[*KEYS, "steps"], value_vars=rel).dropna(subset=["value"])
    w = flat.loc[flat["value"].idxmax()]
    agree = d.loc[d["steps within tol"].idxmin()]
    return [f"Parity with torch eager: every row's losses agree within {PARITY_TOL:g} relative for the first "
            f"{int(agree['steps within tol'])} steps (least: {agree['backend']} {agree['mode']}); over all "
            f"{int(w['steps'])} steps the largest difference is {w['backend']} {w['mode']}'s {w['variable'][:-4]}, "
            f"{w['value']:.2g} relative (float32 rounding grows as a GAN trains: past a few hundred steps the runs "
            "are different trajectories, so compare their quality; `evidence --horizon` measures when they part)."]


def quality_answer(quality: pd.DataFrame) -> list[str]:
    if quality.empty:
        return ["Quality: not scored."]
    t = quality_table(quality)
    metrics = [c for c in t.columns if c not in (*KEYS, "step", "seeds")]
    by_backend: dict[str, list[str]] = {}
    for r in t.to_dict("records"):
        by_backend.setdefault(r["backend"], []).append(f"{r['mode']} " + ", ".join(f"{m} {r[m]}" for m in metrics))
    step = t["step"].max()
    return [f"Quality at step {step} ({', '.join(metrics)}; bench/analysis/quality.py):"] + [
        f"  {b}: {'; '.join(v)}" for b, v in by_backend.items()]


def summary(run_dirs: list[Path]) -> str:
    """Per setup: the step-time table with intervals, then the three answers in a few lines."""
    runs = load_runs(run_dirs)
    timings, losses, quality, blocks = (_merged(runs, n) for n in TABLES)
    if timings.empty:
        return "_no timings_\n"
    parts, many = [], timings["setup"].nunique() > 1
    for setup, g in timings.groupby("setup", sort=False):
        b, lo, q = (t[t["setup"] == setup] if not t.empty else t for t in (blocks, losses, quality))
        table = timing_table(g, b)
        parts += [f"## {setup}\n\n" if many else "", markdown(table[[c for c in SUMMARY_COLUMNS if c in table]]),
                  "\n", "\n".join([*speed_answer(g, b), *parity_answer(lo), *quality_answer(q)]), "\n\n"]
    return "".join(parts)


# ---- the report ----------------------------------------------------------------------------

def build(run_dirs: list[Path], out_dir: Path) -> Path:
    """Write out_dir/report.md (figures in out_dir/plots/) comparing the given runs; returns its path."""
    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    runs = load_runs(run_dirs)
    timings, losses, quality, blocks = (_merged(runs, n) for n in TABLES)
    md = [
        "# ganbench report\n\n", markdown(runs_table(runs, timings)),
        "\n## Step time\n\nms per generator step (n_critic critic updates + 1 generator update): the median of "
        "each round's timed blocks (after warm-up), averaged over rounds (each round counts once), with a 95% "
        "bootstrap interval over rounds and blocks; the ratio to the setup's fastest row, paired round by round, "
        "is a difference only when its interval excludes 1. Other columns: mean ± std over seeds and "
        "rounds.\n\n",
        setup_section(timings, functools.partial(timing_table, blocks=blocks), step_time_figure, "step_time",
                      out_dir, "no timings.csv"),
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
