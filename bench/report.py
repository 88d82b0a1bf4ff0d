"""report.md for one or several run directories: plots, timing, parity, quality, environment.

`build([run_dir], run_dir)` writes the report beside a run's CSVs, its figures in plots/.
Several run directories (a CPU run and a GPU run, say) merge into one comparison whose rows
carry each run's label: its device, or its directory name when devices repeat. Whatever a
run lacks (quality.csv of an older run, the losses of a failed backend, env.json) is left
out of the report, never an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from bench import data as datasets
from bench import plots
from bench.spec import RunSpec

REFERENCE = ("torch", "eager")
LOSS_METRICS = ("d_loss", "g_loss", "w_estimate", "gp", "d_real", "d_fake")
REL_FLOOR = 1e-3  # relative to |reference|, at least this fraction of its largest |value| (zero crossings)
KEYS = ["run", "backend", "mode"]
TIMING_STATS = ("compile_s", "step_ms_median", "step_ms_min", "step_ms_max", "samples_per_s", "achieved_gflops",
                "pct_of_peak", "peak_mem_mb", "peak_rss_mb")  # those a run's timings.csv has
ENV_KEYS = ("command", "complete", "device", "gpu", "cpu", "cpu_count", "python", "platform", "git_commit")
CRITIC_PARAM = re.compile(r"^D\.\d+\.[wb]$")  # canonical critic weights, no optimizer slots


@dataclass(frozen=True)
class Run:
    path: Path
    label: str
    env: dict
    spec: RunSpec | None
    tables: dict[str, pd.DataFrame]  # timings, losses, quality; empty frames where absent


# ---- loading -----------------------------------------------------------------------------

def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()


def _read_env(path: Path) -> dict:
    try:
        return json.loads((path / "env.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _spec(env: dict) -> RunSpec | None:
    d = env.get("spec") or env.get("plan", {}).get("spec")  # newer runs keep it inside the plan
    return RunSpec.from_json(json.dumps(d)) if d else None


def _setup(spec: RunSpec | None) -> str:
    return f"{spec.algo.name} / {spec.arch} / {spec.dataset} / batch {spec.batch_size}" if spec else "unknown setup"


def load_runs(run_dirs: list[Path]) -> list[Run]:
    envs = [_read_env(Path(d)) for d in run_dirs]
    devices = [e.get("device", "?") for e in envs]
    runs = []
    for d, env, device in zip(map(Path, run_dirs), envs, devices, strict=True):
        label = device if devices.count(device) == 1 else d.name
        spec = _spec(env)
        tables = {n: _read_csv(d / f"{n}.csv") for n in ("timings", "losses", "quality")}
        for t in tables.values():
            if not t.empty:
                t.insert(0, "run", label)
                t["setup"] = _setup(spec)
                if "seed" not in t:  # runs from before the seed column
                    t["seed"] = spec.seed if spec else 0
        runs.append(Run(d, label, env, spec, tables))
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


def environment_table(runs: list[Run]) -> pd.DataFrame:
    rows: dict[str, dict[str, str]] = {"directory": {r.label: str(r.path) for r in runs},
                                       "setup": {r.label: _setup(r.spec) for r in runs}}
    for k in ENV_KEYS:
        rows[k] = {r.label: r.env.get(k, "") for r in runs}
    for r in runs:
        for name, version in r.env.get("versions", {}).items():
            rows.setdefault(name, {})[r.label] = version
        for tag, info in r.env.get("backends", {}).items():
            rows.setdefault(f"backend {tag}", {})[r.label] = ", ".join(f"{k} {v}" for k, v in info.items() if v)
    df = pd.DataFrame.from_dict(rows, orient="index", columns=[r.label for r in runs]).fillna("")
    return df.rename_axis("").reset_index()


# ---- figures -------------------------------------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def _real(spec: RunSpec | None) -> np.ndarray | None:
    """A fixed random 2,000 of the run's data set, or None where it cannot be loaded here."""
    if spec is None:
        return None
    try:
        x = datasets.load(spec.dataset, spec.data_dir).x
    except (datasets.DataError, OSError):
        return None
    return x[np.random.default_rng(0).permutation(len(x))[:2000]]


def _run_files(run: Run, folder: str, suffix: str) -> dict[str, Path]:
    """series label -> file of the first seed of each backend/mode of the run, where it exists."""
    out = {}
    t = run.tables["timings"]
    for (backend, mode), g in (t.groupby(["backend", "mode"], sort=False) if not t.empty else ()):
        for tag in (f"{backend}-{mode}", f"{backend}-{mode}-seed{g['seed'].iloc[0]}"):
            if (f := run.path / folder / f"{tag}{suffix}").exists():
                out[f"{backend}-{mode}"] = f
                break
    return out


def _critic_weights(path: Path) -> np.ndarray:
    with np.load(path) as f:
        return np.concatenate([f[k].ravel() for k in f.files if CRITIC_PARAM.match(k)])


def _by_setup(df: pd.DataFrame, value_cols: list[str], keys: list[str]) -> dict[str, dict[str, pd.DataFrame]]:
    """setup -> series -> the series' rows averaged over seeds at each key."""
    return {setup: {s: gs.groupby(keys, as_index=False)[value_cols].mean() for s, gs in g.groupby("series", sort=False)}
            for setup, g in df.groupby("setup", sort=False)}


Figures = dict[str, list[tuple[str, Path]]]  # report section -> [(caption, png)]


def _step_time_rows(timings: pd.DataFrame) -> pd.DataFrame:
    ok = timings[(timings["status"] == "ok") & timings["step_ms_median"].notna()]
    return ok.groupby("series", sort=False).agg(
        step_ms_median=("step_ms_median", "mean"), step_ms_min=("step_ms_min", "min"),
        step_ms_max=("step_ms_max", "max")).reset_index().rename(columns={"series": "label"})


def _run_figures(run: Run) -> list[tuple[str, str, str, partial]]:
    """(section, caption, file stem, draw(path)) for one run's samples, interpolation and critic."""
    out = []
    real = _real(run.spec)
    if samples := _run_files(run, "samples", ".npy"):
        arrays = {k: np.load(f) for k, f in samples.items()}
        title = f"{run.label}: {_setup(run.spec)}, after the last step"
        out.append(("samples", run.label, "samples", partial(plots.samples_side_by_side, arrays, real, title=title)))
    if interp := _run_files(run, "samples", ".interp.npy"):
        arrays = {k: np.load(f) for k, f in interp.items()}
        out.append(("interpolation", run.label, "interp", partial(plots.interpolation, arrays, real=real)))
    if run.spec and run.spec.algo.clip and (finals := _run_files(run, "raw", ".final.npz")):
        weights = {k: _critic_weights(f) for k, f in finals.items()}
        out.append(("critic", run.label, "critic", partial(plots.critic_histograms, weights, run.spec.algo.clip)))
    return [(sec, cap, f"{stem}-{_slug(run.label)}", draw) for sec, cap, stem, draw in out]


def figures(runs: list[Run], timings: pd.DataFrame, losses: pd.DataFrame, quality: pd.DataFrame,
            plot_dir: Path) -> Figures:
    """Draw every figure the data allow."""
    todo = []
    if not timings.empty and not (bars := _step_time_rows(timings)).empty:
        todo.append(("timing", "step time", "step_time", partial(plots.step_times, bars)))
    if not losses.empty:
        cols = [m for m in LOSS_METRICS if m in losses]
        todo += [("losses", setup, f"losses-{_slug(setup)}", partial(plots.loss_curves, curves, title=setup))
                 for setup, curves in _by_setup(losses, cols, ["step"]).items()]
    if not quality.empty:
        todo += [("quality", setup, f"quality-{_slug(setup)}", partial(plots.quality_curves, curves, title=setup))
                 for setup, curves in _by_setup(quality, ["wall_s", "value"], ["step", "metric"]).items()]
    for run in runs:
        todo += _run_figures(run)
    out: Figures = {}
    for section, caption, stem, draw in todo:
        draw(plot_dir / f"{stem}.png")
        out.setdefault(section, []).append((caption, plot_dir / f"{stem}.png"))
    return out


# ---- the report ----------------------------------------------------------------------------

SECTIONS = (  # (figure section, heading, text before its figures)
    ("samples", "Samples", "G(z) for one fixed z shared by all backends, beside the real data."),
    ("interpolation", "Latent interpolation", "G(z) along straight lines between fixed random z."),
    ("critic", "Critic weights", "Final critic weights of a weight-clipping run; dashed: the clip bounds."),
)


def _images(figs: Figures, section: str, out_dir: Path) -> str:
    return "".join(f"![{cap}]({p.relative_to(out_dir).as_posix()})\n\n" for cap, p in figs.get(section, []))


def runs_table(runs: list[Run], timings: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in runs:
        t = timings[timings["run"] == r.label] if not timings.empty else timings
        seeds = sorted(t["seed"].unique()) if not t.empty else []
        rows.append({"run": r.label, "directory": r.path.name, "setup": _setup(r.spec),
                     "steps": r.spec.steps if r.spec else "", "seeds": ",".join(map(str, seeds)),
                     "device": r.env.get("gpu") or r.env.get("device", ""), "complete": r.env.get("complete", "")})
    return pd.DataFrame(rows)


def build(run_dirs: list[Path], out_dir: Path) -> Path:
    """Write out_dir/report.md (figures in out_dir/plots/) comparing the given runs; returns its path."""
    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    runs = load_runs(run_dirs)
    timings, losses, quality = (_merged(runs, n) for n in ("timings", "losses", "quality"))
    figs = figures(runs, timings, losses, quality, out_dir / "plots")
    md = ["# ganbench report\n\n", markdown(runs_table(runs, timings)),
          "\n## Step time\n\nms per generator step (n_critic critic updates + 1 generator update): median, min "
          "and max over the timed blocks after warm-up; mean ± std over seeds where a run has several.\n\n",
          markdown(timing_table(timings) if not timings.empty else timings, "no timings.csv"), "\n",
          _images(figs, "timing", out_dir),
          f"## Parity against {'-'.join(REFERENCE)}\n\nMax absolute / max relative difference over the steps "
          f"both have; relative to |reference|, floored at {REL_FLOOR:g} of its largest value so zero crossings do "
          "not blow it up; worst seed.\n\n",
          markdown(parity_table(losses) if not losses.empty else losses, "nothing to compare with the reference"),
          "\n## Losses\n\nPer step, mean over seeds; curves in parity lie on top of each other (drawn thick to "
          "thin).\n\n", _images(figs, "losses", out_dir),
          "## Quality\n\nFinal value per metric (mean ± std over seeds); the metrics are defined in "
          "bench/quality.py.\n\n",
          markdown(quality_table(quality) if not quality.empty else quality, "no quality.csv in these runs"), "\n",
          _images(figs, "quality", out_dir)]
    for section, heading, text in SECTIONS:
        if section in figs:
            md += [f"## {heading}\n\n{text}\n\n", _images(figs, section, out_dir)]
    md += ["## Environment\n\n", markdown(environment_table(runs))]
    path = out_dir / "report.md"
    path.write_text("".join(md))
    return path
