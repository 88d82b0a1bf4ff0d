"""A long-lived worker: `python -m bench.run.worker MODULE WORK_DIR` trains job after job in one process.

The runner starts one per (backend, mode, device count) and hands it tasks, one tag a line
on stdin (the job is WORK_DIR/<tag>.job.json), in the plan's order. The backend's module (and with it the framework) is
imported once at start, and the matmul peak probe is measured once, after the first job's
training; every job then builds its spec's data, NumPy weights and input stream, trains
through the Backend protocol, times each block, and writes <tag>.json (status, timings,
info) and <tag>.npz (per-step metrics) into the job's work directory. With
checkpoint_every, a framework-neutral checkpoint (weights, optimizer slots, step, metrics
so far) is rewritten atomically; the input stream needs no state beyond the step number.
With snapshot_every, the weights alone are also saved every N steps, one file a step in
<tag>.snapshots/ (the parity horizon compares them with a float64 run's).

Stdout is the parent's channel alone, one JSON object a line: {"ready": s} once the
module is imported, {"step": ...} after each block, {"done": tag} after each job. Whatever
the framework prints goes to the job's log (stdout and stderr point there while it runs).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from backends.common import die_with
from bench.core import data as datasets
from bench.core.files import ENCODING, read_text, save_arrays, write_atomic
from bench.core.flops import step_flops
from bench.core.nets import ARCHS, init_weights, nudged, param_shapes
from bench.core.spec import RunSpec
from bench.core.stream import InputStream
from bench.core.timing import BlockTime, summarize
from bench.run.environment import PARENT_ENV

PEAK_PROBE = {"cpu": (2048, 5), "gpu": (8192, 20)}  # (n, reps) of the fp32 matmul peak probe
PROBE_ENV = "GANBENCH_PEAK_PROBE"  # "n,reps" instead: a cheap probe for smoke runs (the tests'); its peak reads low
STEP, METRIC, EVAL = "__step__", "__metric__.", "__eval__."  # checkpoint keys beside the state


_channel = sys.stdout  # to the parent: serve() makes it a copy of fd 1 and points fd 1 at the log
_peak: dict[tuple[int, int], float] = {}  # (n, reps) -> GFLOP/s: the probe runs once per worker


def _emit(**kw) -> None:
    _channel.write(json.dumps(kw) + "\n")
    _channel.flush()


def _reset_peak_rss() -> None:
    """Linux: start this job's resident-set peak (VmHWM) afresh; elsewhere it spans the worker's jobs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    _reset_peak_rss()  # the resident set at this point (the framework imported) is where the task's peak starts
    spec = RunSpec.from_json(job["spec"])
    arch = ARCHS[spec.arch]
    out_dir, tag = Path(job["work_dir"]), job["tag"]
    ckpt = Path(job["checkpoint"]) if job.get("checkpoint") else None
    ds = datasets.load(spec.dataset, spec.data_dir)
    x = datasets.to_range(ds.x.reshape((-1, *arch.x_shape)), arch.x_range)
    stream = InputStream.for_spec(spec, arch.z_dim, len(arch.x_shape), len(x))
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
    cuts = (spec.eval_every, spec.checkpoint_every, spec.snapshot_every)
    if ckpt and ckpt.exists():
        saved = load_checkpoint(ckpt)
        # A new process warms up again: from a checkpoint too near the end no block would be timed, so from step 0.
        if any(b.start >= saved[1] + spec.warmup for b in stream.blocks(saved[1], spec.steps, spec.block, cuts)):
            state, start, metrics, more = saved
            evals.update(more)
    if state is None:
        state = nudged(init_weights(arch, spec.seed, spec.init), arch, spec.perturb_ulps)
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
        snapshot = spec.snapshot_every and done % spec.snapshot_every == 0
        checkpoint = ckpt and spec.checkpoint_every and done % spec.checkpoint_every == 0
        now = backend.export() if snapshot or checkpoint else {}  # once, when both fall on this step
        if snapshot:  # the weights alone, one file a step
            snaps = out_dir / f"{tag}.snapshots"
            snaps.mkdir(exist_ok=True)
            save_arrays(snaps / f"{done:07d}.npz", {k: now[k] for k in param_shapes(arch)})
        if checkpoint:
            save_checkpoint(ckpt, now, done, metrics, evals)
        _emit(step=done, of=spec.steps, ms=times[-1].ms_per_step, d_loss=float(m["d_loss"][-1]))

    gpu_mb = backend.peak_memory_mb()  # the allocator's peak on a GPU, read before the probe below
    if probe not in _peak:  # once per worker, after its first training: the device is warm by then
        _peak[probe] = backend.matmul_gflops(*probe)
    peak_gflops = _peak[probe]
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
        result["blocks"] = [[b.start, b.steps, b.seconds] for b in times]  # blocks.csv: the intervals' data
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
    result["peak_mem_mb"] = gpu_mb if gpu_mb is not None else _peak_rss_mb()
    if gpu_mb is not None and job.get("index", 0):  # the frameworks' GPU peaks cannot be reset from here
        result["note"] = f"peak_mem_mb: the allocator's peak over this worker's {job['index'] + 1} setups"
    return result


def _run_job(job: dict) -> dict:
    try:
        return run(job)
    except Exception as e:  # recorded as a failed row; the parent replaces this worker and goes on
        traceback.print_exc()
        return {"status": "failed", "error": f"{type(e).__name__}: {e}"}
    finally:
        gc.collect()  # the job's backend goes now (torch's follower ranks stop), not during the next job


def _write_result(job: dict, result: dict) -> None:
    out = Path(job["work_dir"]) / f"{job['tag']}.json"
    write_atomic(out, json.dumps(result, indent=1))


def _point_output_at(fd: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)


def serve(module: str, work_dir: Path) -> int:
    """Import `module`, then run the jobs whose tags come on stdin until it closes."""
    global _channel
    _channel = os.fdopen(os.dup(1), "w")
    home = os.dup(2)  # the worker's own log, between jobs
    _point_output_at(home)
    t0 = time.perf_counter()
    try:
        importlib.import_module(module)
    except ImportError:  # each job then reports it (run() imports again) as unavailable
        traceback.print_exc()
    _emit(ready=time.perf_counter() - t0)
    for index, line in enumerate(sys.stdin):
        job = {**json.loads(read_text(work_dir / f"{line.strip()}.job.json")), "index": index}
        with open(job["log"], "a", encoding=ENCODING) as log:
            _point_output_at(log.fileno())
            try:
                result = _run_job(job)
            finally:
                _point_output_at(home)
        _write_result(job, result)
        _emit(done=job["tag"], status=result["status"])
    return 0


def main(argv: list[str]) -> int:
    if PARENT_ENV in os.environ:
        die_with(int(os.environ[PARENT_ENV]))
    return serve(argv[0], Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
