"""What the evidence studies share: which backends are installed, and one resumable run of the runner."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import backends
from bench.core.files import read_text
from bench.run.procs import Terminated, catch_signals, restore_signals
from bench.run.rundir import is_run_dir, read_rows


def available(names: list[str]) -> list[str]:
    """The requested backends whose framework is installed; the others named on stderr."""
    out = []
    for name in names:
        e = backends.entry(name)
        if importlib.util.find_spec(e.framework) is None:
            print(f"skipping {name}: {e.framework} is not installed ({e.install})", file=sys.stderr)
        else:
            out.append(name)
    return out


def complete(run_dir: Path) -> bool:
    """Every task has its row, and none was left out by a budget (a failed one stays failed)."""
    if not is_run_dir(run_dir) or not json.loads(read_text(run_dir / "env.json")).get("complete", False):
        return False
    return all(r["status"] != "skipped" for r in read_rows(run_dir / "timings.csv"))


def task_minutes(run_dir: Path) -> float:
    """Minutes the run's tasks took over every call (env.json tasks_s); 0 where it has not started."""
    env = run_dir / "env.json"
    return json.loads(read_text(env)).get("tasks_s", 0.0) / 60 if env.is_file() else 0.0


def run_or_resume(args: list[str], run_dir: Path, deadline: float | None = None) -> bool:
    """`python -m bench run ARGS --out RUN_DIR`, or `--resume RUN_DIR` where an earlier call was cut
    short (its checkpoints and finished rows are kept), or nothing where it is complete. With a
    deadline (time.monotonic()), the run gets what is left as its --budget; none left: not started.
    True when the run directory is complete afterwards."""
    if complete(run_dir):
        return True
    budget = []
    if deadline is not None:
        left = deadline - time.monotonic()
        if left < 1:
            print(f"budget spent: {run_dir} left for a later call", file=sys.stderr)
            return False
        budget = ["--budget", f"{left:.0f}s"]
    cmd = [sys.executable, "-m", "bench", "run", *budget,
           *(["--resume", str(run_dir)] if is_run_dir(run_dir) else [*args, "--out", str(run_dir)])]
    print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    run_to_end(cmd)  # a failed backend is a row in its timings.csv, not an exception here
    return complete(run_dir)


def run_to_end(cmd: list[str], stdout: IO | None = None, stderr: IO | None = None) -> int:
    """Run cmd and return its exit status. Stopped by SIGTERM or SIGHUP, pass the signal on and
    wait for cmd to close its run (a runner left behind would go on writing where the next call
    resumes, a measuring child would go on taking the cores), then end with 128 + the signal.
    Ctrl-C reaches the whole process group: wait too."""
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr)
    old = catch_signals()
    try:
        return proc.wait()
    except Terminated as e:
        signum = e.signum
        proc.send_signal(signum)
    except KeyboardInterrupt:
        signum = signal.SIGINT
    finally:
        restore_signals(old)  # from here a second signal ends this process at once
    proc.wait()
    raise SystemExit(128 + signum)


def output_of(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """run_to_end with cmd's output kept, in files rather than pipes, so that waiting is all a
    signal can interrupt."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = run_to_end(cmd, out, err)
        text = []
        for f in (out, err):
            f.seek(0)
            text.append(f.read().decode("utf-8", errors="replace"))
    return subprocess.CompletedProcess(cmd, code, *text)


def checked_stdout(cmd: list[str], what: str) -> str:
    """output_of's stdout; on failure, exit here with `what failed:` and cmd's stderr's tail."""
    out = output_of(cmd)
    if out.returncode != 0:
        raise SystemExit(f"{what} failed:\n{out.stderr[-3000:]}")
    return out.stdout
