"""One backend, one mode, one process: `python -m bench.run.worker JOB.json`.

Builds the spec's data, NumPy weights and input stream, trains through the Backend
protocol, times each block, and writes <tag>.json (status, timings, info) and
<tag>.npz (per-step metrics) into the job's work directory. Progress goes to stdout as
one JSON object per line for the parent to render. With checkpoint_every, a
framework-neutral checkpoint (weights, optimizer slots, step, metrics so far) is
rewritten atomically; the input stream needs no state beyond the step number.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from bench.core import data as datasets
from bench.core.files import read_text, save_arrays, write_atomic
from bench.core.flops import step_flops
from bench.core.nets import ARCHS, init_weights
from bench.core.spec import RunSpec
from bench.core.stream import InputStream
from bench.core.timing import BlockTime, summarize

PARENT_ENV = "GANBENCH_PARENT_PID"  # set by the runner: the worker dies with that process
PEAK_PROBE = {"cpu": (2048, 5), "gpu": (8192, 20)}  # (n, reps) of the fp32 matmul peak probe
PROBE_ENV = "GANBENCH_PEAK_PROBE"  # "n,reps" instead: a cheap probe for smoke runs (the tests'); its peak reads low
STEP, METRIC, EVAL = "__step__", "__metric__.", "__eval__."  # checkpoint keys beside the state


def _emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def save_checkpoint(path: Path, state: dict, step: int, metrics: dict, evals: dict) -> None:
    save_arrays(path, {**state, STEP: np.array(step),
                       **{METRIC + k: np.concatenate(v) if v else np.zeros(0) for k, v in metrics.items()},
                       **{EVAL + k: np.asarray(v) for k, v in evals.items()}})


def load_checkpoint(path: Path) -> tuple[dict, int, dict, dict]:
    with np.load(path) as z:
        state = {k: z[k] for k in z.files if not k.startswith("__")}
        metrics = {k[len(METRIC):]: [z[k]] for k in z.files if k.startswith(METRIC)}
        evals = {k[len(EVAL):]: list(z[k]) for k in z.files if k.startswith(EVAL)}
        return state, int(z[STEP]), metrics, evals


def run(job: dict) -> dict:
    spec = RunSpec.from_json(job["spec"])
    arch = ARCHS[spec.arch]
    out_dir, tag = Path(job["work_dir"]), job["tag"]
    ckpt = Path(job["checkpoint"]) if job.get("checkpoint") else None
    ds = datasets.load(spec.dataset, spec.data_dir)
    x = datasets.to_range(ds.x.reshape((-1, *arch.x_shape)), arch.x_range)
    stream = InputStream(spec.seed, spec.algo, spec.batch_size, arch.z_dim, len(arch.x_shape), len(x))
    try:
        backend_cls = importlib.import_module(job["module"]).BACKEND
    except ImportError as e:  # the framework itself is missing or broken
        return {"status": "unavailable", "error": f"{e}; install: {job.get('install', '')}"}
    backend = backend_cls(spec, arch, job["mode"], job["device"])
    # read before training, so that a malformed setting fails the run at once, not after it
    probe = tuple(int(v) for v in os.environ[PROBE_ENV].split(",")) if PROBE_ENV in os.environ \
        else PEAK_PROBE[job["device"]]

    start, metrics, state = 0, {}, None
    evals: dict[str, list] = {"step": [], "wall_s": [], "samples": []}
    cuts = (spec.eval_every, spec.checkpoint_every)
    if ckpt and ckpt.exists():
        saved = load_checkpoint(ckpt)
        # A new process warms up again: from a checkpoint too near the end no block would be timed, so from step 0.
        if any(b.start >= saved[1] + spec.warmup for b in stream.blocks(saved[1], spec.steps, spec.block, cuts)):
            state, start, metrics, more = saved
            evals.update(more)
    if state is None:
        state = init_weights(arch, spec.seed, spec.init)
    backend.load(state, x)

    def draw(z: np.ndarray) -> np.ndarray:  # samples in the data's units ([0, 1] images), for metrics and plots
        return datasets.from_range(backend.sample(z), arch.x_range)

    times: list[BlockTime] = []
    wall0 = evals["wall_s"][-1] if evals["wall_s"] else 0.0
    eval_z = stream.eval_z(spec.eval_samples)
    result = {"status": "ok", "info": backend.info(), "steps_done": start, "resumed_from": start}
    for block in stream.blocks(start, spec.steps, spec.block, cuts):
        arrays = block.arrays()  # made before the clock starts
        t0 = time.perf_counter()
        m = backend.train(arrays)  # returns only when the device is done
        times.append(BlockTime(block.start, block.steps, time.perf_counter() - t0))
        for k, v in m.items():
            metrics.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
        done = result["steps_done"] = block.start + block.steps
        bad = [k for k, v in m.items() if not np.all(np.isfinite(v))]
        if bad:
            first = block.start + min(int(np.argmin(np.isfinite(m[k]))) for k in bad)
            result.update(status="diverged", steps_done=first, error=f"non-finite {', '.join(bad)} at step {first}")
            break
        if done == spec.steps or (spec.eval_every and done % spec.eval_every == 0):
            evals["step"].append(done)  # training seconds so far; the sampling itself is not counted
            evals["wall_s"].append(wall0 + sum(t.seconds for t in times))
            evals["samples"].append(draw(eval_z))
        if ckpt and spec.checkpoint_every and done % spec.checkpoint_every == 0:
            save_checkpoint(ckpt, backend.export(), done, metrics, evals)
        _emit(step=done, of=spec.steps, ms=times[-1].ms_per_step, d_loss=float(m["d_loss"][-1]))

    gpu_mb = backend.peak_memory_mb()  # the allocator's peak on a GPU, read before the probe below
    peak_gflops = backend.matmul_gflops(*probe)  # same process, after training
    final = backend.export()
    if result["status"] == "ok" and not all(np.all(np.isfinite(v)) for v in final.values()):
        result.update(status="diverged", error="non-finite weights after the last step")
    n = result["steps_done"]
    save_arrays(out_dir / f"{tag}.npz", {"step": np.arange(n),
                                         **{k: np.concatenate(v)[:n] for k, v in metrics.items()}})
    if result["status"] == "ok":
        # A resumed run warms up again (a new process compiles again).
        timing = summarize(times, start + spec.warmup)
        result["timing"] = {**timing.__dict__, "peak_gflops": peak_gflops}
        flops = step_flops(arch, spec.algo, spec.batch_size)
        if flops is not None:
            achieved = flops / 1e9 / (timing.step_ms_median / 1000)
            result["timing"].update(gflops_per_step=flops / 1e9, achieved_gflops=achieved,
                                    pct_of_peak=100 * achieved / peak_gflops)
        samples_dir = Path(job["samples_dir"])
        save_arrays(samples_dir / f"{tag}.npy", draw(stream.fixed_z(spec.grid_samples)))
        interp = draw(stream.interp_z(4, 10)).reshape(4, 10, *arch.x_shape)
        save_arrays(samples_dir / f"{tag}.interp.npy", interp)
        save_arrays(out_dir / f"{tag}.final.npz", final)
    if evals["step"]:
        save_arrays(out_dir / f"{tag}.evals.npz", {k: np.asarray(v) for k, v in evals.items()})
    result["peak_mem_mb"] = gpu_mb if gpu_mb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def die_with(parent: int) -> None:
    """Die with the process that started this one, even when it is SIGKILLed (a Ray task
    force-cancelled, a killed rank 0): nothing may outlive the run that wanted it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def main(argv: list[str]) -> int:
    if PARENT_ENV in os.environ:
        die_with(int(os.environ[PARENT_ENV]))
    job = json.loads(read_text(Path(argv[0])))
    out = Path(job["work_dir"]) / f"{job['tag']}.json"
    try:
        result = run(job)
    except Exception as e:  # recorded as a failed row; the parent keeps going
        traceback.print_exc()
        result = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
    write_atomic(out, json.dumps(result, indent=1))
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
