"""What bounds a step: PyTorch eager under torch.profiler, and each framework's matmuls run alone.

    python -m bench.tools.profile_step [--batch-size 64] [--steps 100] [--device cpu] [--out FILE.json]

MLP WGAN-GP (the issue's target setup) through the harness's own backends, each framework
in its own process:

1. torch eager, compile and func in one process, a block of each in turn, so that their
   ratios are taken side by side. One block of eager and of func runs under torch.profiler,
   split into matmuls (aten::mm/addmm/bmm self time), the other aten ops (elementwise,
   reductions, copies) and everything outside any aten op (Python, the autograd engine,
   inductor's fused kernels). The profiler records every matmul's shapes: each mode's own
   matmul list (func's graph runs fewer than eager's).
2. The matmuls alone: each list replayed with torch.mm (MKL), distinct inputs per call,
   between the rounds of step 1; and
   for jax, the dot products of its own traced step (n_critic critic updates and a
   generator update) in one jitted function. How a step compares with its own matmuls
   run alone says whether the matmuls or everything else (elementwise ops, dispatch,
   Python) bound it. (XLA schedules the dots inside a fused step better than in this
   replay, so for jax scan it is an estimate of the matmul time, not a strict floor.)
3. jax jit and scan, timed through the harness like the bench does.

On a GPU (--device gpu) the same split shows launch overhead as the time outside the
kernels. Prints a table; --out writes everything as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench import tolerant_console
from bench.analysis import tables
from bench.core import data as datasets
from bench.core.files import make_dir, write_atomic
from bench.core.flops import step_flops
from bench.core.nets import ARCHS, init_weights
from bench.core.spec import WGAN_GP, RunSpec
from bench.core.stream import InputStream
from bench.core.timing import BlockTime, summarize
from bench.tools.runs import checked_stdout

GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def _setup(backend: str, mode: str, batch: int, steps: int, block: int, device: str, python_wrapper: bool = False):
    """The backend, loaded, and the blocks of its input stream. python_wrapper: torch func with
    inductor's Python wrapper where it would launch the kernels from C++ (a CPU)."""
    import backends

    spec = RunSpec(WGAN_GP, "mlp", "mnist", batch, steps, seed=0, warmup=0, block=block)
    arch = ARCHS["mlp"]
    x = datasets.to_range(datasets.load("mnist").x, arch.x_range)
    cls = backends.load(backend)
    if python_wrapper:
        cls = type(cls.__name__, (cls,), {"cpp_wrapper_on_cpu": False})
    b = cls(spec, arch, mode, device)
    b.load(init_weights(arch, 0), x)
    stream = InputStream(0, spec.algo, batch, arch.z_dim, 1, len(x))
    return b, [blk.arrays() for blk in stream.blocks(0, steps, block)]


def _time(b, blocks: list[dict], warmup_blocks: int) -> float:
    """Median ms per step over the blocks after warm-up, with the worker's statistics."""
    times, start = [], 0
    for blk in blocks:
        t0 = time.perf_counter()
        b.train(blk)
        times.append(BlockTime(start, len(blk["z_g"]), time.perf_counter() - t0))
        start += len(blk["z_g"])
    return summarize(times, times[warmup_blocks].start).step_ms_median


def _median_ms(run, reps: int = 50) -> float:
    """Median wall time of run() in ms, the first fifth of the repetitions discarded."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times[reps // 5:])


def gemm_flops(shapes: list[list[int]]) -> float:
    """2mkn of one matmul from the profiler's input shapes: mm (A, B), addmm (bias, A, B), bmm."""
    a, b = shapes[-2], shapes[-1]
    return 2.0 * float(np.prod(a)) * b[-1]


def profile_torch(b, blocks: list[dict], device: str = "cpu") -> dict:
    """One profiled pass over `blocks` of a torch backend: time per step inside matmuls, other
    aten ops and outside them, and the matmul calls per step as (A shape, B shape, count)."""
    from torch.profiler import ProfilerActivity, profile

    n_steps = sum(len(blk["z_g"]) for blk in blocks)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "gpu" else [])
    with profile(activities=acts, record_shapes=True) as prof:
        t0 = time.perf_counter()
        for blk in blocks:
            b.train(blk)
        wall_ms = 1000 * (time.perf_counter() - t0) / n_steps
    gemm: dict[str, list] = {}
    top: dict[str, float] = {}
    gemm_ms = other_ms = 0.0
    for e in prof.key_averages(group_by_input_shape=True):
        if not e.key.startswith("aten::"):
            continue
        ms = e.self_cpu_time_total / 1000 / n_steps
        top[e.key] = top.get(e.key, 0.0) + ms
        if e.key in GEMM_OPS:
            gemm_ms += ms
            shapes = [list(s) for s in e.input_shapes if s]  # mm(A, B[, out]), addmm(bias, A, B[, out])
            a, bb = shapes[:2] if e.key in ("aten::mm", "aten::bmm") else shapes[1:3]
            gemm.setdefault(f"{a}@{bb}", [a, bb, 0])[2] += e.count / n_steps
        else:
            other_ms += ms
    calls = list(gemm.values())
    return {"profiled_ms": wall_ms, "gemm_ms": gemm_ms, "other_aten_ms": other_ms,
            "outside_ops_ms": wall_ms - gemm_ms - other_ms, "gemm_calls": calls,
            "gemm_gflop": sum(gemm_flops([a, bb]) * c for a, bb, c in calls) / 1e9,
            "top_ops": sorted(top.items(), key=lambda kv: -kv[1])[:10]}


TORCH_MODES = ("eager", "compile", "func")
OWN_FLOOR = ("eager", "func")  # modes whose own matmuls are replayed (compile runs eager's graph's)
# func as shipped on a CPU launches its kernels from inductor's C++ wrapper, inside which
# torch.profiler records no op: its split and its matmuls are taken from the same graph with
# the Python wrapper (the same kernels and matmul calls; only the launcher differs), also timed.
FUNC_PY = "func_python_wrapper"


def torch_worker(args) -> dict:
    """Torch's modes in one process, block after block in turn (A B C A B C ...), each profiled
    mode's own matmuls replayed alone between rounds, so every ratio is taken side by side."""
    import torch

    runs = {m: _setup("torch", m, args.batch_size, args.steps, args.block, args.device) for m in TORCH_MODES}
    if args.device == "cpu":
        runs[FUNC_PY] = _setup("torch", "func", args.batch_size, args.steps, args.block, args.device, True)
    warm = max(1, len(runs["eager"][1]) // 5)
    for b, blocks in runs.values():
        for blk in blocks[:warm]:
            b.train(blk)  # compiles
    profiled = {"eager": "eager", "func": FUNC_PY if FUNC_PY in runs else "func"}
    prof = {m: profile_torch(runs[r][0], runs[r][1][warm:warm + 1], args.device) for m, r in profiled.items()}
    times: dict[str, list[float]] = {k: [] for k in (*runs, *(f"{m}_floor" for m in OWN_FLOOR))}
    for i in range(warm + 1, len(runs["eager"][1])):
        for m, (b, blocks) in runs.items():
            t0 = time.perf_counter()
            b.train(blocks[i])
            times[m].append(1000 * (time.perf_counter() - t0) / len(blocks[i]["z_g"]))
        for m in OWN_FLOOR:
            times[f"{m}_floor"].append(_torch_floor(torch, prof[m]["gemm_calls"], args.device, reps=5))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {m: med[m] / med[f"{m}_floor"] for m in OWN_FLOOR}
    if FUNC_PY in med:
        ratio[FUNC_PY] = med[FUNC_PY] / med["func_floor"]
    return {"step_ms": med, "min_ms": {k: min(v) for k, v in times.items()}, "rounds": len(times["eager"]),
            "profiles": prof, "profiled": profiled, "threads": torch.get_num_threads(), "floor_ratio": ratio}


def _operands(shapes: list[tuple], rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Distinct float32 inputs for every (lhs shape, rhs shape), so nothing can be cached or merged."""
    return [(rng.standard_normal(a).astype(np.float32), rng.standard_normal(b).astype(np.float32)) for a, b in shapes]


def _torch_floor(torch, calls: list, device: str, reps: int = 50) -> float:
    dev = "cuda" if device == "gpu" else "cpu"
    shapes = [(a, b) for a, b, count in calls for _ in range(round(count))]
    ops = [(torch.from_numpy(a).to(dev), torch.from_numpy(b).to(dev))
           for a, b in _operands(shapes, np.random.default_rng(0))]

    def run() -> None:
        for a, b in ops:
            out = torch.mm(a, b)
        float(out[0, 0])  # waits for the device

    return _median_ms(run, reps)


def _jaxpr_dots(jaxpr, out: dict, times: float) -> None:
    for e in jaxpr.eqns:
        if e.primitive.name == "dot_general":
            key = (e.invars[0].aval.shape, e.invars[1].aval.shape, e.params["dimension_numbers"])
            out[key] = out.get(key, 0) + times
        for p in e.params.values():
            inner = getattr(p, "jaxpr", p)  # pjit, custom_jvp, scan bodies
            if hasattr(inner, "eqns"):
                _jaxpr_dots(inner, out, times)


def jax_dots(b, block: dict) -> list[tuple[tuple, tuple, tuple, float]]:
    """The dot products of one training step of a jax backend (n_critic critic updates and
    one generator update) as traced: (lhs shape, rhs shape, dimension numbers, count)."""
    import jax

    p, o, s = b.params, b.opt_state, b.stats
    critic = jax.make_jaxpr(b._critic_update)(p["D"], o["D"], s, p["G"], b.data, block["idx"][0, 0],
                                              block["z_d"][0, 0], block["alpha"][0, 0])
    generator = jax.make_jaxpr(b._generator_update)(p["G"], o["G"], s, p["D"], block["z_g"][0])
    out: dict = {}
    _jaxpr_dots(critic.jaxpr, out, block["idx"].shape[1])
    _jaxpr_dots(generator.jaxpr, out, 1)
    return [(*key, n) for key, n in out.items()]


def dot_flops(lhs: tuple, rhs: tuple, dims: tuple) -> float:
    """2 x (output elements) x (contracted size) of a dot_general."""
    (contract, rhs_contract), (batch, rhs_batch) = dims
    free = [n for i, n in enumerate(lhs) if i not in (*contract, *batch)]
    rhs_free = [n for i, n in enumerate(rhs) if i not in (*rhs_contract, *rhs_batch)]
    return 2.0 * np.prod([lhs[i] for i in batch]) * np.prod(free) * np.prod(rhs_free) * np.prod(
        [lhs[i] for i in contract])


def jax_worker(args) -> dict:
    import jax

    out = {}
    for mode in ("jit", "scan"):
        b, blocks = _setup("jax", mode, args.batch_size, args.steps, args.block, args.device)
        out[f"{mode}_step_ms"] = _time(b, blocks, max(1, len(blocks) // 5))
    b, blocks = _setup("jax", "jit", args.batch_size, args.block, args.block, args.device)
    dots = jax_dots(b, blocks[0])
    calls = [(lhs, rhs, dims) for lhs, rhs, dims, n in dots for _ in range(round(n))]
    arrays = jax.device_put(_operands([(lhs, rhs) for lhs, rhs, _ in calls], np.random.default_rng(0)))
    # One executable of every dot of a step, distinct inputs each, nothing else.
    run = jax.jit(lambda xs: [jax.lax.dot_general(a, c, dims) for (a, c), (_, _, dims) in zip(xs, calls, strict=True)])
    jax.block_until_ready(run(arrays))
    return {**out, "floor_ms": _median_ms(lambda: jax.block_until_ready(run(arrays))), "n_dots": len(calls),
            "dot_gflop": sum(dot_flops(lhs, rhs, dims) * n for lhs, rhs, dims, n in dots) / 1e9}


def _run(worker: str, args) -> dict:
    cmd = [sys.executable, "-m", "bench.tools.profile_step", "--worker", worker, "--batch-size", str(args.batch_size),
           "--steps", str(args.steps), "--block", str(args.block), "--device", args.device]
    print("$", " ".join(cmd[2:]), file=sys.stderr, flush=True)
    return json.loads(checked_stdout(cmd, f"{worker} worker").strip().splitlines()[-1])


def report(t: dict, j: dict, batch: int) -> str:
    flops = step_flops(ARCHS["mlp"], WGAN_GP, batch) / 1e9
    ms = t["step_ms"]
    rows = []
    for m in (*TORCH_MODES, FUNC_PY):
        if m not in ms:
            continue
        pr = t["profiles"].get(m)  # eager and func: the floor is theirs (FUNC_PY shares func's)
        floor = (f"{tables.cell(ms[m + '_floor'])} ({sum(c for _, _, c in pr['gemm_calls']):.0f} matmuls, "
                 f"{pr['gemm_gflop']:.3f} GFLOP)") if pr else ""
        name = "func, inductor's Python wrapper" if m == FUNC_PY else m
        rows.append((f"torch {name}", ms[m], floor, t["floor_ratio"].get(m, "")))
    rows += [("jax jit", j["jit_step_ms"], f"{tables.cell(j['floor_ms'])} ({j['n_dots']} dots, "
              f"{j['dot_gflop']:.3f} GFLOP, one XLA executable)", j["jit_step_ms"] / j["floor_ms"]),
             ("jax scan", j["scan_step_ms"], "", j["scan_step_ms"] / j["floor_ms"])]
    splits = [(f"torch {m}, profiled" + (" (Python wrapper)" if t["profiled"][m] == FUNC_PY else ""),
               p["profiled_ms"], p["gemm_ms"], p["other_aten_ms"], p["outside_ops_ms"])
              for m, p in t["profiles"].items()]
    return (f"MLP WGAN-GP, batch {batch}: {flops:.3f} GFLOP per step analytically; torch's modes interleaved "
            f"over {t['rounds']} rounds, {t['threads']} threads\n\n"
            + tables.markdown(("mode", "ms/step (median)", "its own matmuls alone, ms/step", "step / own floor"), rows)
            + "\nWhere a torch step's time goes under torch.profiler (ms/step): inside matmuls, other aten ops, "
            "outside aten ops (Python, the autograd engine, inductor's fused kernels)\n\n"
            + tables.markdown(("run", "profiled", "matmuls", "other aten", "outside aten"), splits))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tools.profile_step", description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    p.add_argument("--out", type=Path, help="write the measurements as JSON here")
    p.add_argument("--worker", choices=("torch", "jax"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.block < 1:
        p.error("--batch-size and --block must be positive")
    if args.steps < 2 * args.block:
        p.error("--steps must cover at least two blocks (one to warm up, one to time)")
    if args.worker:
        print(json.dumps((torch_worker if args.worker == "torch" else jax_worker)(args)))
        return 0
    if args.out and args.out.exists():
        p.error(f"{args.out} exists; not overwriting it")
    if args.out and (why := make_dir(args.out.parent)):
        p.error(f"--out {args.out} cannot be written: {why}")
    t, j = _run("torch", args), _run("jax", args)
    print(report(t, j, args.batch_size))
    if args.out:
        write_atomic(args.out, json.dumps({"torch": t, "jax": j, "batch_size": args.batch_size}, indent=1))
    return 0


if __name__ == "__main__":
    tolerant_console()
    sys.exit(main())
