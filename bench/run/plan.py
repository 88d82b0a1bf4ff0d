"""What a run will do: the Plan the CLI builds (and env.json keeps, for --resume) and the
Tasks it expands into, in the order they run."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from bench.core.spec import RunSpec


@dataclass(frozen=True)
class Plan:
    specs: tuple[RunSpec, ...]  # one setup, or a suite's many, in priority order
    runs: tuple[tuple[str, str], ...]  # (backend, mode)
    device: str  # cpu | gpu (auto already resolved)
    out: Path
    timeout: float
    command: str
    seeds: tuple[int, ...] = (0,)
    devices: tuple[int, ...] = (1,)  # data-parallel device counts, each its own row
    ray: str | None = None  # None: tasks run here one after another; "local" or a cluster address: on Ray
    report: bool = True  # build report.md and its plots at the end (`run_bench.py report DIR` can later)
    budget: float | None = None  # seconds of wall time for the tasks (--budget); None: no limit
    repeats: int = 1  # rounds of every task, interleaved: round 0 trains, later rounds only time blocks

    def to_dict(self) -> dict:
        return {"specs": [json.loads(s.to_json()) for s in self.specs], "runs": self.runs, "device": self.device,
                "out": str(self.out), "timeout": self.timeout, "command": self.command, "seeds": self.seeds,
                "devices": self.devices, "ray": self.ray, "report": self.report, "budget": self.budget,
                "repeats": self.repeats}

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        specs = tuple(RunSpec.from_json(json.dumps(s)) for s in d["specs"])
        return cls(specs, tuple(map(tuple, d["runs"])), d["device"], Path(d["out"]), d["timeout"], d["command"],
                   tuple(d["seeds"]), tuple(d.get("devices", (1,))), d.get("ray"), d.get("report", True),
                   d.get("budget"), d.get("repeats", 1))


@dataclass(frozen=True)
class Task:
    """One (setup, seed, backend, mode, devices) in one round of the repeats: one row of timings.csv."""

    backend: str
    mode: str
    spec: RunSpec
    tag: str
    repeat: int = 0

    @property
    def worker_key(self) -> tuple[str, str, int]:
        """Tasks with the same key share one long-lived worker process: a framework's device
        count is fixed once it has started (JAX's and TF's CPU split, a process group)."""
        return self.backend, self.mode, self.spec.devices


REPEAT_BLOCKS = 5  # timed blocks of a timing-only round, after its warm-up


def timing_round(spec: RunSpec) -> RunSpec:
    """A later round's spec: warm up and time REPEAT_BLOCKS blocks, no evaluations, checkpoints or snapshots.
    Its losses are round 0's first steps again (the same stream), so they are not recorded."""
    return dataclasses.replace(spec, steps=min(spec.steps, spec.warmup + REPEAT_BLOCKS * spec.block),
                               eval_every=0, checkpoint_every=0, snapshot_every=0)


def tasks(plan: Plan) -> list[Task]:
    """Every (setup, seed, backend, mode, devices) in the order they run: round after round
    (A B C A B C ...), so that each round's step times are taken side by side; within a round the
    plan's setups in their (priority) order, each one in every backend and mode before the next
    setup starts. Tags name only what varies, e.g. torch-eager, torch-eager-r1."""
    out = []
    for r in range(plan.repeats):
        for spec in plan.specs:
            setup = f"{spec.algo.name}-{spec.arch}-b{spec.batch_size}-" if len(plan.specs) > 1 else ""
            for seed in plan.seeds:
                for b, m in plan.runs:
                    for n in plan.devices:
                        tag = (setup + f"{b}-{m}" + (f"-seed{seed}" if len(plan.seeds) > 1 else "")
                               + (f"-{n}dev" if plan.devices != (1,) else "") + (f"-r{r}" if r else ""))
                        s = dataclasses.replace(spec, seed=seed, devices=n)
                        out.append(Task(b, m, timing_round(s) if r else s, tag, r))
    return out


DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """'8m', '90s', '90', '1h30m', '2m30s' -> seconds; ValueError for anything else, or zero."""
    m = DURATION.fullmatch(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise ValueError(f"not a duration: {text!r} (e.g. 8m, 90s, 1h30m)")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = 3600 * h + 60 * mi + s
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return seconds
