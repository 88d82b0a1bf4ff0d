"""Supervising worker processes: start one, hand it a task, follow its progress, notice a
hang, a crash or the end of the time budget, and take it down. Nothing here reads a result."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.run.environment import worker_env

CLOSE_S = 10.0  # a worker told to stop (stdin closed) has this long before it is killed


class Stalled(Exception):
    """The worker went the stall timeout without finishing a block."""


class OutOfTime(Exception):
    """The run's time budget ended while the worker was on a task."""


class Terminated(Exception):
    """SIGTERM or SIGHUP (a closed terminal), turned into an exception so the run is closed like
    on Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


CLOSING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _on_signal(signum, frame):
    raise Terminated(signum)


def catch_signals() -> dict:
    """Our handler for each closing signal not ignored (nohup ignores SIGHUP: it stays so);
    returns the handlers it replaced."""
    return {sig: signal.signal(sig, _on_signal) for sig in CLOSING_SIGNALS
            if signal.getsignal(sig) is not signal.SIG_IGN}


def restore_signals(old: dict) -> None:
    for sig, handler in old.items():
        signal.signal(sig, handler)


class Progress:
    """One line per task: redrawn in place on a terminal; in a log, a line every 25%
    and at least every LOG_EVERY_S seconds, so that a long run's log still shows it moving."""

    LOG_EVERY_S = 60.0

    def __init__(self, label: str) -> None:
        self.label, self.tty, self.last, self.last_t = label, sys.stderr.isatty(), -1, time.monotonic()

    def update(self, step: int, of: int, ms: float, d_loss: float) -> None:
        quarter, now = 4 * step // of, time.monotonic()
        if not self.tty and quarter == self.last and now - self.last_t < self.LOG_EVERY_S:
            return
        self.last, self.last_t = quarter, now
        bar = "#" * (20 * step // of) + "-" * (20 - 20 * step // of)
        line = f"{self.label:<14} [{bar}] {step}/{of} steps  {ms:8.2f} ms/step  d_loss {d_loss:+.4f}"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        sys.stderr.flush()

    def done(self, status: str) -> None:
        sys.stderr.write(("\r\033[K" if self.tty else "") + f"{self.label:<14} {status}\n")
        sys.stderr.flush()


class Worker:
    """One `python -m bench.run.worker` process, handed tasks one at a time (see its docstring)."""

    def __init__(self, module: str, work_dir: Path, device: str, devices: int, log: Path) -> None:
        self.spawned = time.monotonic()
        self.start_s: float | None = None  # spawn to "ready": interpreter, bench and the framework imported
        self.log = log
        with log.open("a") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.run.worker", module, str(work_dir)],
                                         env=worker_env(device, devices), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # end of file: the worker has exited

    def run(self, tag: str, progress: Progress, stall_s: float, deadline: float | None) -> int | None:
        """Hand the worker one task and follow it: None once it reports the task done, its exit
        code if it died first; Stalled after stall_s seconds without a finished block (a hang
        ends, a long run that keeps making progress never does), OutOfTime past `deadline`."""
        try:
            self.proc.stdin.write(tag + "\n")
            self.proc.stdin.flush()
        except OSError:  # it died since its last task
            return self.proc.wait()
        heard = time.monotonic()
        while True:
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise OutOfTime
            try:
                line = self.lines.get(timeout=max(0.01, min(1.0, stall_s)))
            except queue.Empty:
                if time.monotonic() - heard > stall_s:
                    raise Stalled from None
                continue
            if line is None:
                return self.proc.wait()
            heard = time.monotonic()
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if "ready" in msg:
                self.start_s = heard - self.spawned
            elif "done" in msg:
                return None
            elif "step" in msg:
                progress.update(**msg)

    def close(self) -> None:
        """Let it finish (stdin closed ends its loop); kill it if it does not."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=CLOSE_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
