"""One backend, one mode, one process: `python -m bench.worker JOB.json`.

Builds the spec's data, NumPy weights and input stream, trains through the Backend
protocol, times each block, and writes <tag>.json (status, timings, info) and
<tag>.npz (per-step metrics) into the job's work directory. Progress goes to stdout as
one JSON object per line for the parent to render.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from pathlib import Path

import numpy as np

import backends
from bench import data as datasets
from bench.nets import ARCHS, init_weights
from bench.spec import RunSpec
from bench.stream import InputStream
from bench.timing import BlockTime, summarize


def _emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def run(job: dict) -> dict:
    spec = RunSpec.from_json(job["spec"])
    arch = ARCHS[spec.arch]
    out_dir, tag = Path(job["work_dir"]), job["tag"]
    ds = datasets.load(spec.dataset, spec.data_dir)
    x = ds.x.reshape((-1, *arch.x_shape))
    stream = InputStream(spec.seed, spec.algo, spec.batch_size, arch.z_dim, len(arch.x_shape), len(x))
    backend = backends.load(job["backend"])(spec, arch, job["mode"], job["device"])
    backend.load(init_weights(arch, spec.seed), x)

    metrics: dict[str, list[np.ndarray]] = {}
    times: list[BlockTime] = []
    result = {"status": "ok", "info": backend.info(), "steps_done": 0}
    for block in stream.blocks(0, spec.steps, spec.block):
        arrays = block.arrays()  # made before the clock starts
        t0 = time.perf_counter()
        m = backend.train(arrays)  # returns only when the device is done
        times.append(BlockTime(block.start, block.steps, time.perf_counter() - t0))
        for k, v in m.items():
            metrics.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
        done = block.start + block.steps
        result["steps_done"] = done
        bad = [k for k, v in m.items() if not np.all(np.isfinite(v))]
        if bad:
            first = min(int(np.argmin(np.isfinite(m[k]))) for k in bad)
            result.update(status="diverged", error=f"non-finite {', '.join(bad)} at step {block.start + first}")
            result["steps_done"] = block.start + first
            break
        _emit(step=done, of=spec.steps, ms=times[-1].ms_per_step, d_loss=float(m["d_loss"][-1]))

    n = result["steps_done"]
    np.savez(out_dir / f"{tag}.npz", step=np.arange(n), **{k: np.concatenate(v)[:n] for k, v in metrics.items()})
    if result["status"] == "ok":
        result["timing"] = summarize(times, spec.warmup).__dict__
        np.save(Path(job["samples_dir"]) / f"{tag}.npy", backend.sample(stream.fixed_z(spec.eval_samples)))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    out = Path(job["work_dir"]) / f"{job['tag']}.json"
    try:
        result = run(job)
    except Exception as e:  # recorded as a failed row; the parent keeps going
        traceback.print_exc()
        result = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
    out.write_text(json.dumps(result, indent=1))
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
