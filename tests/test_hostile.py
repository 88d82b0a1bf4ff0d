"""What a hostile or careless user does: relative paths from elsewhere, moved and copied run
directories, full disks, signals at awkward moments, two processes on one run, corrupt
files, odd locales. Each case leaves the previous good state and one clear message.

The fake backends (tests/fake_backends.py) stand in for frameworks: a worker starts in about
a second, so each case costs a few seconds."""

from __future__ import annotations

import csv
import dataclasses
import errno
import gzip
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, running_workers, small_spec
from fake_backends import fake_registry
from test_report import write_run

import backends
from bench.core.nets import ARCHS, init_weights
from bench.run import cli, rows
from bench.run.plan import Plan
from bench.run.rundir import TIMING_COLUMNS, RunDir
from bench.run.runner import execute

FAKE = ["--backends", "fake", "--steps", "6", "--warmup", "2", "--block", "2", "--batch-size", "4", "--no-report"]


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    for name, e in fake_registry().items():
        monkeypatch.setitem(backends.REGISTRY, name, e)
    monkeypatch.setenv("GANBENCH_FAKE_FLAKY_DIR", str(tmp_path))  # "flaky" crashes on its first attempt only


def plan(out: Path, runs, steps=6, **spec_over) -> Plan:
    spec = dataclasses.replace(small_spec("wgan_gp", "mlp", batch=4, steps=steps), warmup=2, block=2, **spec_over)
    return Plan((spec,), tuple(runs), "cpu", out, 60.0, "test", report=False)


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def statuses(out: Path) -> list[tuple[str, str]]:
    return [(r["mode"], r["status"]) for r in read(out / "timings.csv")]


def write_idx(path: Path, arr: np.ndarray) -> None:
    path.write_bytes(gzip.compress(bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
                                   + arr.astype(np.uint8).tobytes()))


def mnist_dir(d: Path, n: int = 16) -> Path:
    d.mkdir(parents=True)
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((n, 28, 28)))
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(n))
    return d


# ---- bugs -------------------------------------------------------------------------------------

def test_relative_paths_are_resolved_once_and_a_run_resumes_from_any_cwd(tmp_path, fakes, monkeypatch):
    """--out and --data-dir relative to the caller's directory; --resume from another one."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mnist_dir(tmp_path / "a" / "data")
    monkeypatch.chdir(tmp_path / "a")
    assert cli.main([*FAKE, "--modes", "ok,flaky", "--data-dir", "data", "--out", "runs/r"]) == 1  # flaky failed
    out = tmp_path / "a" / "runs" / "r"
    spec = json.loads((out / "env.json").read_text(encoding="utf-8"))["plan"]["specs"][0]
    assert spec["data_dir"] == str(tmp_path / "a" / "data")
    monkeypatch.chdir(tmp_path / "b")
    assert cli.main(["--resume", str(out)]) == 0
    assert statuses(out) == [("ok", "ok"), ("flaky", "ok")]
    assert not any((tmp_path / "b").iterdir())  # nothing made relative to the new cwd


def test_resume_acts_on_the_directory_given_not_the_one_recorded(tmp_path, fakes):
    """A copy resumes in place (the original is left alone); a moved run resumes where it is."""
    orig = tmp_path / "orig"
    assert execute(plan(orig, [("fake", "ok"), ("fake", "flaky")])) == 1
    copy = tmp_path / "copy"
    shutil.copytree(orig, copy)
    assert cli.main(["--resume", str(copy)]) == 0
    assert statuses(copy) == [("ok", "ok"), ("flaky", "ok")]
    assert statuses(orig) == [("ok", "ok"), ("flaky", "failed")]
    moved = tmp_path / "moved"
    orig.rename(moved)
    assert cli.main(["--resume", str(moved)]) == 0 and not orig.exists()
    assert json.loads((moved / "env.json").read_text(encoding="utf-8"))["plan"]["out"] == str(moved)


def _limit_file_size(nbytes: int):
    """RLIMIT_FSIZE: a write past nbytes fails with EFBIG, as a full disk fails with ENOSPC."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def restore():
        resource.setrlimit(resource.RLIMIT_FSIZE, old[0])
        signal.signal(signal.SIGXFSZ, old[1])

    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, old[0][1]))
    return restore


def test_a_full_disk_leaves_whole_csv_rows_and_headers(tmp_path):
    """An append that does not fit leaves the table as it was; a first append that does not fit
    leaves no headerless file behind, so the next append still writes the header."""
    rd = RunDir(tmp_path / "run")
    row = {c: "x" * 8 for c in TIMING_COLUMNS}
    rd.append("timings.csv", TIMING_COLUMNS, [row])
    before = (rd.path / "timings.csv").read_bytes()
    restore = _limit_file_size(len(before) + 100)  # room for less than one more row
    try:
        with pytest.raises(OSError):
            rd.append("timings.csv", TIMING_COLUMNS, [row, row])
        with pytest.raises(OSError):
            rd.append("losses.csv", TIMING_COLUMNS, [row] * 20)  # new file, header and all too big
    finally:
        restore()
    assert (rd.path / "timings.csv").read_bytes() == before
    rd.append("losses.csv", TIMING_COLUMNS, [row])
    assert list(pd.read_csv(rd.path / "losses.csv").columns) == list(TIMING_COLUMNS)


def test_a_full_disk_keeps_the_previous_json_and_picture(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.write_json("env.json", {"complete": True})
    restore = _limit_file_size(64)
    try:
        with pytest.raises(OSError):
            rd.write_json("env.json", {"complete": False, "pad": "x" * 200})
    finally:
        restore()
    assert json.loads((rd.path / "env.json").read_text(encoding="utf-8")) == {"complete": True}
    assert [p.name for p in rd.path.iterdir() if p.is_file()] == ["env.json"]  # no temporary file left


def test_written_files_are_as_readable_as_any_new_file(tmp_path):
    """Writing through a temporary file must not leave results readable by their owner alone
    (mkstemp's 0600): a results folder is shared with a team, a web server, a CI artifact."""
    from bench.core.files import save_arrays, write_atomic

    mask = os.umask(0o022)
    os.umask(mask)
    write_atomic(tmp_path / "a.md", "x")
    save_arrays(tmp_path / "b.npy", np.zeros(2))
    plain = tmp_path / "plain"
    plain.write_text("x", encoding="utf-8")
    for f in ("a.md", "b.npy"):
        assert (tmp_path / f).stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_row_torn_by_a_killed_writer_is_dropped_before_the_next(tmp_path):
    from bench.core.files import append_lines

    f = tmp_path / "t.csv"
    f.write_text("a,b\n1,2\n3,", encoding="utf-8")  # SIGKILL in the middle of a row
    append_lines(f, "a,b\n", "5,6\n")
    assert f.read_text(encoding="utf-8") == "a,b\n1,2\n5,6\n"


def test_a_failed_write_in_the_runner_is_a_message_and_resume_finishes(tmp_path, fakes, monkeypatch, capsys):
    """The disk fills while the runner records a task: exit 1 with a message naming --resume,
    not a traceback; the files are whole; after space is freed --resume finishes the run."""
    out = tmp_path / "run"
    real = rows.record

    def full_disk(plan, run_dir, task, result):
        if task.mode == "slow":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_dir.path / "losses.csv"))
        return real(plan, run_dir, task, result)

    monkeypatch.setattr(rows, "record", full_disk)
    assert execute(plan(out, [("fake", "ok"), ("fake", "slow")])) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and f"--resume {out}" in err and "Traceback" not in err
    monkeypatch.setattr(rows, "record", real)
    assert execute(cli.resume_plan(out), resume=True) == 0
    assert statuses(out) == [("ok", "ok"), ("slow", "ok")]
    assert pd.read_csv(out / "losses.csv").groupby("mode").size().to_dict() == {"ok": 6, "slow": 6}


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounts a small tmpfs: root only")
def test_a_really_full_disk(tmp_path, fakes, capsys):
    """The issue's case on a real small file system: every file is whole at every moment; once
    space is freed, --resume finishes with one header per table and no doubled row."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)]).returncode:
        pytest.skip("mount refused")
    try:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * 15_500_000)  # less room than one task's files (~1.2 MB)
        out = disk / "run"
        p = plan(out, [("fake", "ok"), ("fake", "slow"), ("fake", "diverge")])
        assert execute(p) == 1
        for name in ("timings.csv", "losses.csv"):
            if (out / name).exists():
                assert (out / name).read_text(encoding="utf-8").startswith("backend,mode,")
        filler.unlink()
        assert execute(cli.resume_plan(out), resume=True) == 1  # "diverge" diverges, by design
        assert sorted(statuses(out)) == [("diverge", "diverged"), ("ok", "ok"), ("slow", "ok")]
        losses = pd.read_csv(out / "losses.csv")
        assert losses.groupby("mode").size().to_dict() == {"ok": 6, "slow": 6, "diverge": 3}
    finally:
        subprocess.run(["umount", "--lazy", str(disk)])  # detached even if a killed worker still holds a file


def test_sigterm_while_scoring_leaves_the_task_to_do(tmp_path, fakes, monkeypatch):
    """SIGTERM after a task trained but before its quality rows and picture were written: the
    task is not done; --resume runs it again and its rows are not doubled."""
    from bench.analysis import quality

    out = tmp_path / "run"
    real = quality.score_run

    def interrupted(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(quality, "score_run", interrupted)
    assert execute(plan(out, [("fake", "ok")])) == 143
    monkeypatch.setattr(quality, "score_run", real)
    assert execute(cli.resume_plan(out), resume=True) == 0
    assert (out / "samples" / "fake-ok.png").is_file()
    assert len(pd.read_csv(out / "losses.csv")) == 6 and statuses(out) == [("ok", "ok")]


DRIVER = """
import json, sys
import backends
from tests.fake_backends import fake_registry
from bench.run.plan import Plan
from bench.run.runner import execute
backends.REGISTRY.update(fake_registry())
sys.exit(execute(Plan.from_dict(json.loads(open(sys.argv[1]).read())), resume=sys.argv[2] == "resume"))
"""


def _hangup_closes() -> None:
    # A suite started under nohup passes SIGHUP on ignored, and the runner leaves an ignored
    # SIGHUP ignored (by design: nohup means go on); the driver stands for a run in a terminal.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _driver(tmp_path: Path, p: Plan, how: str) -> subprocess.Popen:
    (tmp_path / "plan.json").write_text(json.dumps(p.to_dict()), encoding="utf-8")
    (tmp_path / "driver.py").write_text(DRIVER, encoding="utf-8")
    return subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "plan.json"), how],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            preexec_fn=_hangup_closes)


def _wait_for_worker(out: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not running_workers(str(out)):
        time.sleep(0.1)
    assert running_workers(str(out)), "the worker never started"


def test_a_second_process_on_a_run_directory_is_refused(tmp_path, fakes, capsys):
    """While one process runs in DIR, a --resume of DIR is refused (exit 2) and trains nothing."""
    out = tmp_path / "run"
    proc = _driver(tmp_path, plan(out, [("fake", "slow")], steps=20), "fresh")
    _wait_for_worker(out)
    assert execute(cli.resume_plan(out), resume=True) == 2
    assert "in use by another ganbench process" in capsys.readouterr().err
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert statuses(out) == [("slow", "ok")] and len(pd.read_csv(out / "losses.csv")) == 20


def test_a_closed_terminal_stops_the_run_like_sigterm(tmp_path):
    """SIGHUP (the terminal went away) is closed like SIGTERM (tested in test_reliability):
    env.json says so, exit 129, and --resume finishes the run from its checkpoint."""
    steps = 20
    out = tmp_path / "run"
    p = plan(out, [("fake", "slow")], steps=steps, checkpoint_every=4)
    proc = _driver(tmp_path, p, "fresh")
    for line in proc.stderr:  # the slow task past its first checkpoint
        if line.startswith("fake-slow") and int(line.split(f"/{steps}")[0].split()[-1]) >= 6:
            break
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=60) == 128 + signal.SIGHUP
    env = json.loads((out / "env.json").read_text(encoding="utf-8"))
    assert env["interrupted"] == "SIGHUP" and not env["complete"]
    resumed = _driver(tmp_path, p, "resume")
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    assert pd.read_csv(out / "losses.csv")["step"].tolist() == list(range(steps))


def test_resume_runs_a_task_again_whose_outputs_were_deleted(tmp_path, fakes):
    out = tmp_path / "run"
    assert execute(plan(out, [("fake", "ok"), ("fake", "slow")])) == 0
    with pytest.raises(cli.UsageError, match="nothing to resume"):
        cli.resume_plan(out)
    (out / "samples" / "fake-slow.png").unlink()
    assert execute(cli.resume_plan(out), resume=True) == 0
    assert (out / "samples" / "fake-slow.png").is_file()
    assert sorted(statuses(out)) == [("ok", "ok"), ("slow", "ok")]
    assert pd.read_csv(out / "losses.csv").groupby("mode").size().to_dict() == {"ok": 6, "slow": 6}


def test_a_task_interrupted_near_its_end_trains_again_from_step_0(tmp_path, fakes, monkeypatch):
    """A resumed worker warms up again, so a checkpoint within --warmup steps of the end (here
    at the last step itself) would leave no block to time: such a task trains from step 0."""
    from bench.analysis import quality

    out = tmp_path / "run"
    monkeypatch.setattr(quality, "score_run", lambda *a, **k: os.kill(os.getpid(), signal.SIGTERM))
    assert execute(plan(out, [("fake", "ok")], checkpoint_every=2)) == 143
    monkeypatch.undo()
    for name, e in fake_registry().items():
        monkeypatch.setitem(backends.REGISTRY, name, e)
    assert execute(cli.resume_plan(out), resume=True) == 0
    assert statuses(out) == [("ok", "ok")] and read(out / "timings.csv")[0]["timed_steps"] == "4"


# ---- the locale -------------------------------------------------------------------------------

def test_report_in_an_ascii_locale_is_utf8_and_an_old_report_survives_a_failure(tmp_path):
    run = write_run(tmp_path / "run", "cpu", (0, 1), quality=True, new_env=True)
    (run / "report.md").write_text("old report\n", encoding="utf-8")
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", PYTHONIOENCODING="")
    r = subprocess.run([sys.executable, "run_bench.py", "report", str(run)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "mean ± std" in (run / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", [["run_bench.py", "compare"], ["-m", "bench.analysis.compare"]])
def test_a_console_without_the_tables_characters_prints_them_as_question_marks(tmp_path, command):
    """An ASCII console: compare's table (→, ±) is printed with '?' for what it cannot show,
    and the command ends normally; its file keeps every character."""
    base = write_run(tmp_path / "base", "cpu", (0, 1), quality=True, new_env=True)
    new = write_run(tmp_path / "new", "cpu", (0, 1), quality=True, new_env=True)
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", PYTHONIOENCODING="")
    r = subprocess.run([sys.executable, *command, str(base), str(new), "--out", str(tmp_path / "c")], cwd=ROOT,
                       env=env, capture_output=True, text=True, encoding="ascii", errors="strict", timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "?" in r.stdout and "→" in (tmp_path / "c" / "compare.md").read_text(encoding="utf-8")


# ---- poor messages ----------------------------------------------------------------------------

def _refused(capsys, argv: list[str], message: str) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_out_that_is_a_file_or_cannot_be_made(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("precious", encoding="utf-8")
    _refused(capsys, ["--out", str(f)], "is a file, not a directory")
    _refused(capsys, ["--out", str(f / "run")], "cannot be made")
    assert f.read_text(encoding="utf-8") == "precious"
    # /proc takes no new directory, even from root (for whom a mode-0555 folder is writable)
    _refused(capsys, ["--backends", "torch", "--modes", "eager", "--steps", "4", "--warmup", "2", "--block", "2",
                      "--out", "/proc/ganbench-cannot/run"], "cannot be made")


@pytest.mark.parametrize("tool", ["bench.tools.evidence --seeds 1", "bench.tools.evidence --horizon",
                                  "bench.tools.overhead", "bench.tools.profile_step", "bench compare BASE BASE",
                                  "bench.tools.gpu_run --device cpu"])
def test_the_tools_refuse_an_out_that_cannot_take_files_before_any_work(tmp_path, tool):
    """Each tool makes its --out (or its file's folder) first: a measurement that cannot be
    written is one message and exit 2, not an hour of work and then a traceback."""
    f = tmp_path / "afile"
    f.write_text("precious", encoding="utf-8")
    base = tmp_path / "base"  # compare looks at its runs only once --out can be made
    base.mkdir()
    (base / "timings.csv").write_text("backend\n", encoding="utf-8")
    for out, why in ((f / "sub" / "o.json", "is a file"), (Path("/proc/ganbench-cannot/o.json"), "No such file")):
        args = [a.replace("BASE", str(base)) for a in tool.split()]
        r = subprocess.run([sys.executable, "-m", *args, "--out", str(out)], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
        assert r.returncode == 2, r.stderr[-2000:]
        assert "cannot be" in r.stderr and why in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f.read_text(encoding="utf-8") == "precious"


@pytest.mark.parametrize(("tool", "message"), [
    ("bench.tools.evidence --backends torch,mxnet", "--backends: unknown mxnet"),
    ("bench.tools.evidence --datasets mnist,cifar", "--datasets: unknown cifar"),
    ("bench.tools.evidence --seeds 2 --budget soon", "--budget: not a duration"),
    ("bench.tools.overhead --frameworks torch,mxnet", "--frameworks: unknown mxnet"),
    ("bench.tools.overhead --reps 0", "must be positive"),
    ("bench.tools.overhead --steps 0", "must be positive"),
    ("bench.tools.profile_step --batch-size 0", "must be positive"),
    ("bench.tools.gpu_run --device cpu --budget soon", "not a duration"),
])
def test_the_tools_refuse_bad_arguments_before_any_work(tmp_path, tool, message):
    r = subprocess.run([sys.executable, "-m", *tool.split(), "--out", str(tmp_path / "out" / "o.csv")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_out_in_a_read_only_directory(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    _refused(capsys, ["--out", str(ro / "run")], "is not writable")


def test_out_inside_another_run_directory(tmp_path, fakes, capsys):
    out = tmp_path / "run"
    assert execute(plan(out, [("fake", "ok")])) == 0
    _refused(capsys, [*FAKE, "--out", str(out / "nested")], "is inside the run directory")


@pytest.fixture
def failed_run(tmp_path, fakes) -> Path:
    """A run whose one task failed: --resume would run it again."""
    out = tmp_path / "run"
    assert execute(plan(out, [("fake", "crash")], checkpoint_every=2)) == 1
    return out


@pytest.mark.parametrize("damage,message", [
    (lambda text: text[: len(text) // 2], "env.json is damaged"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "plan"}), "has no plan"),
    (lambda text: "[]", "env.json is damaged"),
])
def test_resume_with_a_damaged_env_json(failed_run, capsys, damage, message):
    env = failed_run / "env.json"
    env.write_text(damage(env.read_text(encoding="utf-8")), encoding="utf-8")
    _refused(capsys, ["--resume", str(failed_run)], message)


def test_resume_with_a_truncated_or_foreign_checkpoint(failed_run, capsys):
    ckpt = failed_run / "checkpoints" / "fake-crash.npz"
    np.savez(ckpt, **init_weights(ARCHS["mlp"], 0))
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    _refused(capsys, ["--resume", str(failed_run)], f"checkpoint {ckpt} is unreadable")
    np.savez(ckpt, **init_weights(ARCHS["toy_mlp"], 0))
    _refused(capsys, ["--resume", str(failed_run)], "is not of this run's mlp networks")


def test_resume_refuses_other_flags(failed_run, capsys):
    _refused(capsys, ["--resume", str(failed_run), "--steps", "100", "--backends", "torch"],
             "drop --backends, --steps")


@pytest.mark.parametrize("content,message", [
    (b'backend,mode\n"torch,eager\n', "is not a readable CSV table"),
    (b"a,b\n1,2\n", "is not a ganbench table: no backend, mode column"),
    (b"\xff\xfe\x00\x81 not text", "is not a readable CSV table"),
])
def test_report_of_a_corrupt_csv(tmp_path, capsys, content, message):
    run = write_run(tmp_path / "run", "cpu", (0,), quality=False, new_env=True)
    (run / "losses.csv").write_bytes(content)
    assert cli.report_main([str(run)]) == 2
    err = capsys.readouterr().err
    assert message in err and "losses.csv" in err


@pytest.mark.parametrize("files,message", [
    ({"train-images-idx3-ubyte": b""}, "bad magic number"),
    ({"train-images-idx3-ubyte": b"\x00\x00\x08\x03\x00"}, "truncated IDX header"),
    ({"train-images-idx3-ubyte": b"\x00\x00\x08\x03" + struct.pack(">3I", 10, 28, 28) + b"\x00" * 99},
     "header says"),
    ({"train-images-idx3-ubyte": b"\x00\x00\x08\x02" + struct.pack(">2I", 10, 784) + b"\x00" * 7840},
     "must be (N, 28, 28)"),
    ({"train-images-idx3-ubyte": b"\x00\x00\x08\x03" + struct.pack(">3I", 0, 28, 28)}, "no samples"),
])
def test_bad_data_is_refused_once_up_front(tmp_path, capsys, files, message):
    d = tmp_path / "data"
    d.mkdir()
    n = 0 if "no samples" in message else 10
    (d / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", n) + b"\x00" * n)
    for name, data in files.items():
        (d / name).write_bytes(data)
    out = tmp_path / "never"
    _refused(capsys, ["--backends", "torch", "--data-dir", str(d), "--out", str(out)], message)
    assert not out.exists()


def test_a_path_undecodable_in_the_locale_is_written_back_as_its_bytes(tmp_path):
    """In an ASCII locale argv's non-ASCII path arrives surrogate-escaped; the report and
    summary that name it must still be written (they were a UnicodeEncodeError)."""
    from bench.core.files import write_atomic

    name = "ünï run".encode().decode("ascii", "surrogateescape")
    write_atomic(tmp_path / "report.md", f"results in {name}\n")
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == "results in ünï run\n"
