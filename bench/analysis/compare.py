"""`ganbench compare BASE NEW`: what changed between two run directories.

Rows are matched by setup (algo / arch / data set / batch), backend and mode. For each
match: the step-time ratio NEW / BASE with its 95% bootstrap interval (over each run's
rounds and blocks, bench.analysis.stats) and a verdict that calls it faster or slower only
when the interval excludes 1; whether the losses are identical (they should be when the
seed and every version agree), else their largest relative difference; the quality
deltas; and what differs in the environment. Markdown on stdout (and compare.md) plus one
figure of the ratios. With --max-slowdown PCT the exit status is 1 when a row's whole
interval lies above 1 + PCT/100: slower beyond noise by more than PCT, a CI gate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench import default_results, tolerant_console
from bench.analysis import report, stats
from bench.core import schema
from bench.core.files import make_dir, replacing, write_atomic
from bench.core.gan import METRICS

MATCH = ["setup", "backend", "mode"]
ENV_KEYS = ("device", "gpu", "cpu", "cpu_count", "python", "platform", "git_commit")
ROW_ENV = ("threads", "precision", "framework_version", "device")  # per backend, from timings.csv


def _rounds(run: report.Run) -> dict[tuple, dict[tuple, np.ndarray]]:
    """(setup, backend, mode) -> the run's rounds of timed ms/step."""
    t = run.tables["timings"]
    if t.empty:
        return {}
    return {k[1:]: v for k, v in report.step_rounds(t, run.tables["blocks"]).items()}


def unmatched(base: report.Run, new: report.Run) -> str:
    """The rows only one of the runs has, in a sentence ("" when every row matched)."""
    a, b = (set(_rounds(r)) for r in (base, new))
    parts = [f"only in {r.label}: " + ", ".join(" ".join(k[1:]) for k in sorted(x - y))
             for r, x, y in ((base, a, b), (new, b, a)) if x - y]
    return "; ".join(parts) + ".\n\n" if parts else ""


def speed_table(base: report.Run, new: report.Run, max_slowdown: float | None) -> tuple[pd.DataFrame, list, bool]:
    """One row per matched (setup, backend, mode), the (label, ratio) of each for the figure, and
    whether a row failed the max_slowdown gate."""
    a, b = _rounds(base), _rounds(new)
    rows, ratios, failed = [], [], False
    for key in (k for k in a if k in b):
        r = report.step_ratio(b[key], a[key])
        gate = max_slowdown is not None and r.known and r.lo > 1 + max_slowdown / 100
        failed |= gate
        rows.append({**dict(zip(MATCH, key, strict=True)),
                     f"{base.label} ms/step [95% CI]": str(stats.median(list(a[key].values()))),
                     f"{new.label} ms/step [95% CI]": str(stats.median(list(b[key].values()))),
                     "new / base [95% CI]": str(r), "verdict": stats.verdict(r),
                     **({f"slower by > {max_slowdown:g}%": "FAIL" if gate else ""} if max_slowdown is not None
                        else {})})
        ratios.append((" ".join(key[1:]) if len({k[0] for k in a}) == 1 else " ".join(key), r))
    return pd.DataFrame(rows), ratios, failed


def _same_versions(base: report.Run, new: report.Run) -> bool:
    return base.env.get("versions") == new.env.get("versions") and bool(base.env.get("versions"))


def loss_table(base: report.Run, new: report.Run) -> pd.DataFrame:
    """Per matched (setup, backend, mode, seed): identical losses over the common steps, or the
    largest relative difference (relative to |base|, floored as in the report's parity)."""
    la, lb = base.tables["losses"], new.tables["losses"]
    if la.empty or lb.empty:
        return pd.DataFrame()
    metrics = [m for m in METRICS if m in la and m in lb and la[m].notna().any()]
    expect = _same_versions(base, new)
    rows, of_new = [], dict(tuple(lb.groupby([*MATCH, "seed"], sort=False)))
    for key, ga in la.groupby([*MATCH, "seed"], sort=False):
        if key not in of_new:
            continue
        gb = of_new[key]
        x, y = ga.set_index("step")[metrics], gb.set_index("step")[metrics]
        common = x.index.intersection(y.index)
        x, y = x.loc[common], y.loc[common]
        same = bool(((x == y) | (x.isna() & y.isna())).all().all())
        scale = x.abs().clip(lower=report.REL_FLOOR * x.abs().max(), axis=1)
        rel = float(((y - x).abs() / scale).max().max()) if len(common) else float("nan")
        rows.append({**dict(zip([*MATCH, "seed"], key, strict=True)), "steps": len(common),
                     "losses": "identical" if same else f"differ: max rel {rel:.2g}",
                     "expected identical": "yes (same seed and versions)" if expect else "no (versions differ)"})
    return pd.DataFrame(rows)


def quality_table(base: report.Run, new: report.Run) -> pd.DataFrame:
    """Per matched (setup, backend, mode): each metric's final value in both runs and new − base
    (means over seeds)."""
    qa, qb = base.tables["quality"], new.tables["quality"]
    if qa.empty or qb.empty:
        return pd.DataFrame()
    rows = []
    for setup in (s for s in dict.fromkeys(qa["setup"]) if s in set(qb["setup"])):
        ta, tb = (report.quality_table(q[q["setup"] == setup]).drop(columns="run") for q in (qa, qb))
        metrics = [c for c in ta.columns if c in tb.columns and c not in ("backend", "mode", "step", "seeds")]
        for r in ta.merge(tb, on=["backend", "mode"], suffixes=(" base", " new")).to_dict("records"):
            row = {"setup": setup, "backend": r["backend"], "mode": r["mode"],
                   "step": f"{r['step base']} / {r['step new']}"}
            for k in metrics:
                va, vb = (pd.to_numeric(r[f"{k} {side}"].split(" ± ")[0], errors="coerce") for side in ("base", "new"))
                row[k] = f"{r[f'{k} base']} → {r[f'{k} new']} ({vb - va:+.3g})" if np.isfinite([va, vb]).all() else ""
            rows.append(row)
    return pd.DataFrame(rows)


def environment_diff(base: report.Run, new: report.Run) -> pd.DataFrame:
    """Only what differs: machine, Python, versions, and each backend's threads and precision."""
    rows = []

    def add(name: str, x, y) -> None:
        if str(x) != str(y):
            rows.append({"": name, base.label: x, new.label: y})

    for k in ENV_KEYS:
        add(k, base.env.get(k, ""), new.env.get(k, ""))
    va, vb = base.env.get("versions", {}), new.env.get("versions", {})
    for k in dict.fromkeys([*va, *vb]):
        add(k, va.get(k, ""), vb.get(k, ""))
    ta, tb = (r.tables["timings"] for r in (base, new))
    for col in ROW_ENV:
        if col in ta and col in tb:
            for backend in dict.fromkeys(ta["backend"]):
                add(f"{backend} {col}", ", ".join(map(str, ta.loc[ta["backend"] == backend, col].dropna().unique())),
                    ", ".join(map(str, tb.loc[tb["backend"] == backend, col].dropna().unique())))
    add("results schema version", base.version, new.version)
    return pd.DataFrame(rows)


def ratio_figure(ratios: list, path: Path, max_slowdown: float | None, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(ratios) + 1.5))
    y = np.arange(len(ratios))
    for i, (_, r) in enumerate(ratios):
        color = "tab:gray" if not r.excludes(1.0) else ("tab:red" if r.lo > 1 else "tab:green")
        err = [[r.value - r.lo], [r.hi - r.value]] if r.known else None
        ax.errorbar(r.value, i, xerr=err, fmt="o", color=color, capsize=3)
    ax.set_xscale("log")  # 2x faster and 2x slower lie equally far from 1
    ax.axvline(1.0, color="black", lw=0.8)
    if max_slowdown is not None:
        ax.axvline(1 + max_slowdown / 100, color="tab:red", lw=0.8, ls="--", label=f"+{max_slowdown:g}%")
        ax.legend(loc="best")
    ax.set_yticks(y, [label for label, _ in ratios])
    ax.invert_yaxis()
    ax.set_xlabel("step time new / base: median, 95% interval")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:  # a full disk leaves the previous picture, not half of one
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def compare(base_dir: Path, new_dir: Path, out: Path, max_slowdown: float | None = None) -> tuple[str, bool]:
    """The markdown (also written to out/compare.md, the figure beside it) and whether a row
    failed the --max-slowdown gate."""
    base, new = report.load_runs([base_dir, new_dir])
    out.mkdir(parents=True, exist_ok=True)
    speed, ratios, failed = speed_table(base, new, max_slowdown)
    figure = out / "compare.png"
    title = f"base {base.label} ({base.path.name}) → new {new.label} ({new.path.name})"
    if ratios:
        ratio_figure(ratios, figure, max_slowdown, title)
    md = [f"# compare: base {base.label} ({base.path}) → new {new.label} ({new.path})\n\n",
          "## Step time\n\nnew / base of the ms per generator step (each round's median, averaged over rounds), "
          "95% bootstrap interval over each run's "
          "rounds and blocks (runs before results schema 2 kept one median per row: no interval); faster or "
          "slower only when the interval excludes 1 (the figure: red slower, green faster, grey within noise)"
          + (f"; FAIL where the whole interval is above {1 + max_slowdown / 100:g}" if max_slowdown is not None
             else "") + ".\n\n",
          report.markdown(speed, "no setup, backend and mode in common"), "\n", unmatched(base, new),
          f"\n![ratios]({figure.name})\n\n" if ratios else "\n",
          "## Losses\n\n", report.markdown(loss_table(base, new), "no losses in common"),
          "\n## Quality (final values)\n\n", report.markdown(quality_table(base, new), "not scored in both"),
          "\n## Environment (what differs)\n\n", report.markdown(environment_diff(base, new), "nothing"),
          f"\n{'FAILED' if failed else 'passed'}: --max-slowdown {max_slowdown:g}%\n" if max_slowdown is not None
          else ""]
    text = "".join(md)
    write_atomic(out / "compare.md", text)
    return text, failed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ganbench compare", description=__doc__.split("\n\n")[0])
    p.add_argument("base", type=Path, help="the run directory to compare against")
    p.add_argument("new", type=Path, help="the run directory under test")
    p.add_argument("--max-slowdown", type=float, metavar="PCT",
                   help="exit 1 when a row is slower beyond noise by more than PCT percent")
    p.add_argument("--out", type=Path, help="where compare.md and compare.png go "
                   "(default results/compare-<base>-<new>)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    def error(msg: str) -> int:
        print(f"ganbench compare: error: {msg}", file=sys.stderr)
        return 2

    for d in (args.base, args.new):
        if not (d / "timings.csv").is_file():
            return error(f"{d} has no timings.csv, so it is not a ganbench run directory")
    if args.max_slowdown is not None and args.max_slowdown < 0:
        return error(f"--max-slowdown must not be negative, got {args.max_slowdown:g}")
    out = args.out or default_results() / f"compare-{args.base.resolve().name}-{args.new.resolve().name}"
    if (out / "compare.md").exists():
        return error(f"{out} already holds a comparison; choose another --out (nothing was overwritten)")
    if why := make_dir(out):
        return error(f"--out {out} cannot be made: {why}")
    try:
        text, failed = compare(args.base, args.new, out, args.max_slowdown)
    except schema.UnknownSchema as e:
        return error(str(e))
    print(text + f"\n(written to {out / 'compare.md'})")
    return 1 if failed else 0


if __name__ == "__main__":
    tolerant_console()
    sys.exit(main())
