"""The harness's overhead against hand-written loops, measured side by side.

`python -m bench.tools.overhead [--reps 3] [--steps 200] [--out results/overhead.csv]` runs, for
each framework, its hand-written loop (bench/tools/baselines) and the harness's matching row
(torch eager, tf graph, jax jit) on MLP WGAN-GP, batch 64, the same input stream, in
alternation so that drift in the machine hits both; each in its own process. Writes
one CSV row per framework with the median over repetitions and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bench import default_results, tolerant_console
from bench.core.files import make_dir, write_atomic
from bench.tools.runs import checked_stdout

PAIRS = {"torch": "eager", "tf": "graph", "jax": "jit"}  # the harness row each loop is written like
LIMIT = 1.05  # the harness may be at most 5% slower than a loop written by hand


def _baseline_ms(fw: str, steps: int, warmup: int, device: str) -> float:
    cmd = [sys.executable, "-m", f"bench.tools.baselines.{fw}_loop", "--steps", str(steps), "--warmup", str(warmup),
           "--device", device]
    return json.loads(checked_stdout(cmd, ' '.join(cmd[2:])).strip().splitlines()[-1])["step_ms_median"]


def _harness_ms(fw: str, steps: int, warmup: int, device: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "bench", "run", "--backends", fw, "--modes", PAIRS[fw], "--algo", "wgan_gp",
               "--steps", str(steps), "--warmup", str(warmup), "--batch-size", "64", "--device", device,
               "--out", str(Path(tmp) / "run")]
        checked_stdout(cmd, ' '.join(cmd[2:]))
        return float(pd.read_csv(Path(tmp) / "run" / "timings.csv")["step_ms_median"].iloc[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tools.overhead", description=__doc__.split("\n\n")[0])
    p.add_argument("--frameworks", default=",".join(PAIRS))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--out", type=Path, default=default_results() / "overhead.csv")
    args = p.parse_args(argv)
    frameworks = [f for f in args.frameworks.split(",") if f]
    if unknown := [f for f in frameworks if f not in PAIRS]:
        p.error(f"--frameworks: unknown {', '.join(unknown)}; choose from {', '.join(PAIRS)}")
    if min(args.reps, args.steps) < 1 or args.warmup < 0:
        p.error("--reps and --steps must be positive, --warmup not negative")
    if args.out.exists():
        print(f"{args.out} exists; choose another --out (nothing was overwritten)", file=sys.stderr)
        return 2
    if why := make_dir(args.out.parent):
        print(f"--out {args.out} cannot be written: {why}", file=sys.stderr)
        return 2
    rows = []
    for fw in frameworks:
        base, harness = [], []
        for rep in range(args.reps):
            base.append(_baseline_ms(fw, args.steps, args.warmup, args.device))
            harness.append(_harness_ms(fw, args.steps, args.warmup, args.device))
            print(f"{fw} rep {rep + 1}/{args.reps}: loop {base[-1]:.2f} ms/step, harness {PAIRS[fw]} "
                  f"{harness[-1]:.2f} ms/step", file=sys.stderr, flush=True)
        b, h = statistics.median(base), statistics.median(harness)
        rows.append({"framework": fw, "harness_mode": PAIRS[fw], "device": args.device, "reps": args.reps,
                     "loop_ms_median": b, "harness_ms_median": h, "ratio": h / b, "within_5pct": h / b <= LIMIT,
                     "loop_ms_all": " ".join(f"{v:.2f}" for v in base),
                     "harness_ms_all": " ".join(f"{v:.2f}" for v in harness)})
    table = pd.DataFrame(rows)
    write_atomic(args.out, table.to_csv(index=False))
    print(table[["framework", "harness_mode", "loop_ms_median", "harness_ms_median", "ratio", "within_5pct"]]
          .to_string(index=False, float_format="%.3f"))
    return 0


if __name__ == "__main__":
    tolerant_console()
    sys.exit(main())
