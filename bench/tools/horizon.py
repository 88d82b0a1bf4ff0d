"""The parity horizon study: every backend and mode against a float64 run, step by step.

    python -m bench.tools.evidence --horizon                       # every setup, 2,000 steps
    python -m bench.tools.evidence --horizon --setups wgan_gp-mlp --budget 30m

Per setup, five runs of the runner from the same init and input stream, each into its own
run directory under --out/<setup>/ (resumable: call again to continue where one stopped):

  fp64   torch eager in float64: the reference
  ulp    torch eager in float32, every initial weight moved one ulp  } with torch eager in
  ulp2   the same, moved two ulps                                   } float32: the baseline
  torch  torch eager, compile and func in float32
  tf+jax tf graph and xla, jax jit and scan in float32

tf eager is left out unless --modes all asks for it: it runs the same kernels op by op, at
ten to fifty times the cost. Then bench.analysis.horizon measures each run's distance from
the reference; horizon.csv (the crossing steps), horizon-curves.csv (every distance),
horizon.md (the table and verdicts) and one plot per setup go to --out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.analysis import horizon, plots, tables
from bench.core.files import write_atomic
from bench.tools.runs import complete, run_or_resume, task_minutes


@dataclass(frozen=True)
class Setup:
    algo: str
    arch: str
    steps: int  # a conv step costs tens of MLP steps: its horizon is measured over fewer

    @property
    def name(self) -> str:
        return f"{self.algo}-{self.arch}"


STEPS = 2000
SETUPS = tuple(Setup(a, arch, STEPS) for arch in ("mlp", "toy_mlp") for a in ("gan", "wgan", "wgan_gp")) + (
    Setup("wgan_gp", "dcgan28_small", 300),)
BATCH = 64  # the horizon is about rounding, not the batch: the smallest usual one keeps it affordable
SNAPSHOTS = 40  # weight snapshots per run, evenly spaced

# run directory -> the runner's flags for it; the reference first
RUNS = {
    "fp64": ("--backends", "torch", "--modes", "eager", "--precision", "fp64"),
    "ulp": ("--backends", "torch", "--modes", "eager", "--perturb-ulps", "1"),
    "ulp2": ("--backends", "torch", "--modes", "eager", "--perturb-ulps", "2"),
    "torch": ("--backends", "torch", "--modes", "eager,compile,func"),
    "tf+jax": ("--backends", "tf,jax", "--modes", "graph,xla,jit,scan"),
}
ALL_MODES = {**RUNS, "tf+jax": ("--backends", "tf,jax", "--modes", "eager,graph,xla,jit,scan")}
REFERENCE = ("fp64", "torch-eager")
# The reference's own code in float32, as is and nudged: each differs from it by rounding alone.
BASELINES = {("torch", "torch-eager"): "torch-eager (baseline)",
             ("ulp", "torch-eager"): "torch-eager +1 ulp (baseline)",
             ("ulp2", "torch-eager"): "torch-eager +2 ulp (baseline)"}


def _label(run: str, tag: str) -> str:
    return {REFERENCE: "torch-eager fp64", **BASELINES}.get((run, tag), tag)


def _is_baseline(t: horizon.Trace) -> bool:
    return t.label in BASELINES.values()


def run_setup(setup: Setup, out: Path, steps: int, runs: dict, device: str, deadline: float | None) -> bool:
    every = max(1, steps // SNAPSHOTS)
    common = ["--algo", setup.algo, "--arch", setup.arch, "--batch-size", str(BATCH), "--steps", str(steps),
              "--snapshot-every", str(every), "--checkpoint-every", str(every * 10), "--repeats", "1",
              "--device", device, "--no-report"]
    return all([run_or_resume([*common, *flags], out / setup.name / name, deadline) for name, flags in runs.items()])


def traces(setup_dir: Path, runs: dict) -> list[horizon.Trace]:
    """Every finished run's distances from the reference, the baseline first."""
    ref_dir = setup_dir / REFERENCE[0]
    found = []
    for name in runs:
        tl = setup_dir / name / "timings.csv"
        ok = pd.read_csv(tl) if tl.exists() else pd.DataFrame(columns=["backend", "mode", "status"])
        for r in ok[ok["status"] == "ok"].itertuples():
            tag = f"{r.backend}-{r.mode}"
            if (name, tag) != REFERENCE:
                found.append(horizon.trace(_label(name, tag), setup_dir / name, tag, ref_dir, REFERENCE[1]))
    return sorted(found, key=lambda t: not _is_baseline(t))


def summarize(setup: Setup, ts: list[horizon.Trace], steps: int, minutes: float) -> tuple[list[dict], str]:
    """The crossing rows of horizon.csv and the setup's Markdown section."""
    bases = [t for t in ts if _is_baseline(t)]
    rows, table = [], []
    for t in ts:
        cross = horizon.crossings(t)
        rows += [{"setup": setup.name, "run": t.label, "quantity": q, "threshold": th, "step": s}
                 for (q, th), s in cross.items()]
        verdict = "" if not bases or _is_baseline(t) else horizon.verdict(t, bases, steps)
        table.append({"run": t.label, **{f"{q} {th:.0e}": "-" if s is None else s for (q, th), s in cross.items()},
                      "verdict": verdict})
    head = (f"### {setup.name}, batch {BATCH}, {steps} steps\n\n{minutes:.0f} minutes of training on this machine "
            "(its runs' env.json tasks_s). First step at which the distance from the float64 run reaches each "
            "threshold ('-': not within the run).\n\n")
    return rows, head + tables.markdown_dicts(table)


def main(out: Path, steps: int | None, chosen: list[Setup], all_modes: bool, device: str,
         deadline: float | None) -> int:
    runs = ALL_MODES if all_modes else RUNS
    rows, curves, sections, done = [], [], [], True
    for setup in chosen:
        n = steps or setup.steps
        done &= run_setup(setup, out, n, runs, device, deadline)
        if not complete(out / setup.name / REFERENCE[0]):
            sections.append(f"### {setup.name}\n\nnot measured yet: its float64 reference has not finished.")
            continue
        ts = traces(out / setup.name, runs)
        r, text = summarize(setup, ts, n, sum(task_minutes(out / setup.name / name) for name in runs))
        rows += r
        sections.append(text)
        curves += [pd.DataFrame({"setup": setup.name, "run": t.label, "quantity": q, "step": c[0], "distance": c[1]})
                   for t in ts for q, c in t.curves.items()]
        plots.horizon_curves({t.label: t.curves for t in ts}, horizon.THRESHOLDS, out / f"horizon-{setup.name}.png",
                             f"{setup.name}: distance from the float64 run",
                             baselines=sum(map(_is_baseline, ts)))
    write_atomic(out / "horizon.csv",
                 pd.DataFrame(rows, columns=["setup", "run", "quantity", "threshold", "step"]).to_csv(index=False))
    if curves:  # every distance plotted, for whoever wants other thresholds
        write_atomic(out / "horizon-curves.csv", pd.concat(curves).to_csv(index=False, float_format="%.4g"))
    write_atomic(out / "horizon.md", "# The parity horizon\n\n" + horizon.__doc__.split("\n\n", 1)[1] + "\n"
                 + "\n\n".join(sections) + "\n")
    print("\n\n".join(sections))
    print(f"\nhorizon: {out / 'horizon.md'}" + ("" if done else " (some runs are not finished: call again)"))
    return 0 if done else 1
