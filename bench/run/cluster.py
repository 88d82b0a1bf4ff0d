"""Runs the plan's tasks on Ray (--ray, --ray-address): one Ray task per (setup, seed, backend, mode, devices).

Each Ray task runs local.run_one unchanged (a worker process of its own, its timeout, its
failure handling) in a temporary run directory on whatever node it lands on, and returns the result
with the bytes of every file the worker wrote. The driver writes those files into the real
run directory before handing the result to the runner, which records the row exactly as for a
local run; so a multi-node cluster needs no shared file system. What a node does need: Ray,
the frameworks (a backend missing there is "unavailable"), and any --data-dir at the same path.

A task that fails (crash, timeout, or Ray losing its worker or node) is retried once; a second
failure becomes a failed row that says so. "diverged" and "unavailable" are answers, not
accidents, and are never retried. Ray is an optional extra: only runner.execute imports this
module, and only when plan.ray is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import ray

import backends
import bench
from bench.core.files import write_atomic
from bench.run import local
from bench.run.plan import Plan, Task
from bench.run.procs import Terminated
from bench.run.rundir import RunDir

# The two packages a node needs, shipped as Ray py_modules from wherever they are installed
# (a checkout or site-packages); nothing else of the caller's directory goes along.
PACKAGES = [str(Path(m.__file__).resolve().parent) for m in (bench, backends)]
EXCLUDES = ["__pycache__", "*.pyc"]
LOCAL_OBJECT_STORE = 256 * 1024**2  # results are a few files per task; Ray's default takes 30% of the RAM
RETRIES = 1  # a failed task runs at most twice
WAIT_S = 1.0  # ray.wait returns this often, so Ctrl-C and SIGTERM are handled promptly
CANCEL_S = 30.0  # a cancelled task has this long to stop its worker and clean up before it is killed


def _log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _run_on_node(plan: Plan, task: Task, entry: backends.BackendEntry, checkpoint: bytes | None,
                 omp_threads: str | None, scratch: str) -> tuple[dict, dict[str, bytes], str]:
    """The Ray task: run_one in a temporary run directory here; (result, {relative path: bytes}, node name)."""
    backends.REGISTRY[entry.name] = entry  # the driver's entry, so a backend registered only there (tests) works
    # Ray sets OMP_NUM_THREADS to the task's CPU count where it is unset; the worker gets the driver's setting,
    # the one env.json records, so thread counts (and timings) are those of a run without Ray.
    if omp_threads is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = omp_threads
    tmp = Path(tempfile.gettempdir()) / scratch  # named by the driver, which removes it if it has to kill us
    tmp.mkdir(mode=0o700)
    try:
        run_dir = RunDir(tmp / "run")
        if checkpoint is not None:  # a resumed task continues from the driver's checkpoint
            (run_dir.path / "checkpoints" / f"{task.tag}.npz").write_bytes(checkpoint)
        result = local.run_one(plan, run_dir, task)
        files = {f.relative_to(run_dir.path).as_posix(): f.read_bytes()
                 for f in sorted(run_dir.path.rglob("*")) if f.is_file()}
        return result, files, socket.gethostname()
    finally:  # also on cancellation: run_one has killed its worker by then
        shutil.rmtree(tmp, ignore_errors=True)


def _connect(plan: Plan) -> bool:
    """Start or join Ray; True if this call did (and so shuts it down at the end)."""
    if ray.is_initialized():  # the caller's connection (the tests start one), left as it is
        return False
    handler = signal.getsignal(signal.SIGTERM)
    if plan.ray == "local":
        cpus = os.cpu_count() or 1
        _log(f"ray: starting a local Ray instance ({cpus} CPUs, {LOCAL_OBJECT_STORE >> 20} MB object store, "
             "no dashboard)")
        ray.init(address="local", num_cpus=cpus, object_store_memory=LOCAL_OBJECT_STORE, include_dashboard=False,
                 log_to_driver=False)
    else:  # the nodes import this repository from the copy Ray ships to them
        _log(f"ray: joining the cluster at {plan.ray}, shipping {', '.join(PACKAGES)} to its nodes")
        ray.init(address=plan.ray, runtime_env={"py_modules": PACKAGES, "excludes": EXCLUDES},
                 log_to_driver=False)
    # ray.init replaces the SIGTERM handler with sys.exit; the runner's own records the interruption.
    if handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
    return True


def _node_cpus() -> int:
    cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]]
    cpus = [c for c in cpus if c >= 1]  # a head node often has 0 CPUs so that no task lands on it
    if not cpus:
        raise RuntimeError("ray: no node of the cluster has a CPU to run a task on")
    return int(min(cpus))


def _node_gpus() -> int:
    return int(max((n["Resources"].get("GPU", 0) for n in ray.nodes() if n["Alive"]), default=0))


def _wait(refs: list[ray.ObjectRef]) -> list[ray.ObjectRef]:
    """The finished refs, after at most WAIT_S seconds."""
    try:
        return ray.wait(refs, num_returns=1, timeout=WAIT_S)[0]
    except SystemError as e:  # SIGTERM's (or Ctrl-C's) exception raised inside Ray's C++ wait comes wrapped
        if isinstance(e.__cause__, (KeyboardInterrupt, Terminated)):
            raise e.__cause__ from None
        raise


def _describe(e: Exception) -> str:
    """A Ray exception in one line: the remote wrapper's own exception, or what Ray lost."""
    cause = getattr(e, "cause", None)  # RayTaskError: what _run_on_node raised
    if isinstance(e, ray.exceptions.RayTaskError) and cause is not None:
        return f"{type(cause).__name__} in the Ray task: {cause}"[:400]
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}"[:400]


def _store(run_dir: RunDir, task: Task, files: dict[str, bytes]) -> None:
    """The final attempt's files into the run directory, with the job's paths made the run directory's."""
    for rel, data in files.items():
        if rel.startswith("logs/"):
            continue  # appended per attempt by _append_log
        if rel.endswith(".job.json"):
            job = json.loads(data)
            job.update(work_dir=str(run_dir.path / "raw"), samples_dir=str(run_dir.path / "samples"),
                       log=str(run_dir.path / "logs" / f"{task.tag}.log"),
                       checkpoint=str(run_dir.path / "checkpoints" / f"{task.tag}.npz"))
            data = json.dumps(job).encode()
        write_atomic(run_dir.path / rel, data)


def _append_log(run_dir: RunDir, task: Task, attempt: int, node: str, result: dict,
                files: dict[str, bytes]) -> None:
    """Every attempt's worker log, under a header naming the attempt, its node and its outcome."""
    outcome = result["status"] + (f": {result['error']}" if result.get("error") else "")
    with (run_dir.path / "logs" / f"{task.tag}.log").open("ab") as log:
        log.write(f"--- ray attempt {attempt} of {RETRIES + 1} on {node}: {outcome} ---\n".encode())
        log.write(files.get(f"logs/{task.tag}.log", b""))


def run_tasks(plan: Plan, run_dir: RunDir, tasks: list[Task]) -> Iterator[tuple[Task, dict]]:
    """Submit every task to Ray; yield (task, result) as each finishes, its files already in run_dir."""
    if not tasks:
        return
    own = _connect(plan)
    # ref -> (task, attempt, first attempt's error); kept until the task is final, so an interrupt cancels the rest
    running: dict[ray.ObjectRef, tuple[Task, int, str]] = {}
    scratch: dict[ray.ObjectRef, str] = {}  # each task's temporary directory on its node
    try:
        # Timings must stay honest: on a CPU each task asks for every core of the smallest node (the driver's
        # os.cpu_count() for a local Ray), so two timed tasks never share a machine's cores; on GPUs each asks
        # for its devices, and Ray pins it to its own GPU(s) through CUDA_VISIBLE_DEVICES (kept by the worker).
        cpus = _node_cpus() if plan.device == "cpu" else 0
        gpus = _node_gpus() if plan.device == "gpu" else 0
        remote = ray.remote(max_retries=0)(_run_on_node)  # our retry, once, for every kind of failure
        checkpoints = {t.tag: run_dir.path / "checkpoints" / f"{t.tag}.npz" for t in tasks}
        omp_threads = os.environ.get("OMP_NUM_THREADS")

        def submit(task: Task, attempt: int, first_error: str) -> None:
            ckpt = checkpoints[task.tag].read_bytes() if checkpoints[task.tag].exists() else None
            res = {"num_gpus": task.spec.devices} if plan.device == "gpu" else {"num_cpus": cpus}
            name = f"ganbench-ray-{task.tag}-{uuid.uuid4().hex[:12]}"
            ref = remote.options(**res).remote(plan, task, backends.entry(task.backend), ckpt, omp_threads, name)
            running[ref], scratch[ref] = (task, attempt, first_error), name

        n, done = len(tasks), 0
        unrunnable: list[tuple[Task, dict]] = []  # no node could ever run them
        for task in tasks:
            if plan.device == "gpu" and task.spec.devices > gpus:
                msg = f"needs {task.spec.devices} GPU(s) on one node; the largest Ray node has {gpus}"
                if plan.ray == "local":  # no autoscaler will add one: it would wait forever
                    unrunnable.append((task, {"status": "failed", "error": msg}))
                    continue
                _log(f"ray: warning: {task.tag} {msg}; it waits for the cluster to get one")
            submit(task, 1, "")
        for task, result in unrunnable:
            done += 1
            _log(f"{task.tag:<14} failed: {result['error']}  [{done}/{n} tasks done]")
            yield task, result
        while running:
            ready = _wait(list(running))
            for ref in ready:
                task, attempt, first_error = running.pop(ref)
                try:
                    result, files, node = ray.get(ref)
                except ray.exceptions.RayError as e:  # the task's worker or node died, or the wrapper raised
                    result, files, node = {"status": "failed", "error": f"Ray: {_describe(e)}"}, {}, "?"
                _append_log(run_dir, task, attempt, node, result, files)
                if result["status"] == "failed" and attempt <= RETRIES:
                    _log(f"{task.tag:<14} failed on attempt {attempt}: {result['error'][:300]}; retrying")
                    submit(task, attempt + 1, result["error"])
                    continue
                if attempt > 1:  # the row says that it needed a second try, and why
                    status = result["status"]
                    result["error"] = (f"{status} after one retry; attempt 1: {first_error}; "
                                       f"attempt {attempt}: {result.get('error') or status}")
                _store(run_dir, task, files)
                done += 1
                ms = result.get("timing", {}).get("step_ms_median")
                what = f"{ms:.2f} ms/step" if ms else (result.get("error") or "")[:300]
                _log(f"{task.tag:<14} {result['status']}  {what}  [{done}/{n} tasks done]")
                yield task, result
    finally:  # finished, or interrupted (Ctrl-C, SIGTERM in the runner): nothing may keep running
        if running:
            _log(f"ray: cancelling {len(running)} unfinished task(s)")
            for ref in running if CANCEL_S > 0 else ():  # a KeyboardInterrupt in the task: run_one kills
                with contextlib.suppress(Exception):  # its worker (Ray may be gone; shutting down is what matters)
                    ray.cancel(ref)
            with contextlib.suppress(Exception):
                _, late = ray.wait(list(running), num_returns=len(running), timeout=CANCEL_S)
                for ref in late:  # a node too busy to act on it (seen taking 10-40 s): kill the task's
                    ray.cancel(ref, force=True)  # process, and with it its worker (GANBENCH_PARENT_PID)
                if late:  # a killed task cannot clean up: its directory goes here where the node is this machine
                    ray.wait(late, num_returns=len(late), timeout=5)
                    for ref in late:
                        shutil.rmtree(Path(tempfile.gettempdir()) / scratch[ref], ignore_errors=True)
        if own:
            ray.shutdown()
