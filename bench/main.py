"""The `ganbench` command: one subcommand per job, each module loaded only when asked for.

    ganbench run --backends torch,tf,jax --algo wgan_gp    # also: python run_bench.py ...
    ganbench report DIR [DIR ...]
    ganbench compare BASE NEW [--max-slowdown PCT]          # also: python run_bench.py compare ...
    ganbench evidence | overhead | profile-step | gpu-run  # the measuring tools
"""

from __future__ import annotations

import importlib
import sys

from bench import tolerant_console

# subcommand -> (module, one line for the help); the module's main(argv) does the rest.
COMMANDS = {
    "run": ("bench.run.cli", "train a setup in every backend and write the run directory (the default)"),
    "report": ("bench.run.cli:report_main", "rebuild report.md and plots from run directories"),
    "compare": ("bench.analysis.compare", "compare two run directories: speed with noise, losses, quality, env"),
    "evidence": ("bench.tools.evidence", "the learning benchmark: long runs scored against goals"),
    "overhead": ("bench.tools.overhead", "the harness against hand-written per-framework loops"),
    "profile-step": ("bench.tools.profile_step", "what bounds a step: profiler split and matmul floors"),
    "gpu-run": ("bench.tools.gpu_run", "the GPU suite in one call of a lent GPU machine, packed to bring back"),
}


def usage() -> str:
    rows = "\n".join(f"  {name:<13} {text}" for name, (_, text) in COMMANDS.items())
    return f"usage: ganbench COMMAND [ARGS ...]   (ganbench COMMAND --help for its flags)\n\ncommands:\n{rows}\n"


def main(argv: list[str] | None = None, help_is_run: bool = False) -> int:
    """help_is_run: `--help` alone shows the run flags (run_bench.py, whose flags are run's)."""
    tolerant_console()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]) and not help_is_run:
        print(usage(), end="")
        return 0
    if not argv or argv[0] not in COMMANDS:
        if argv and not argv[0].startswith("-"):
            print(f"ganbench: unknown command {argv[0]!r}\n{usage()}", end="", file=sys.stderr)
            return 2
        argv = ["run", *argv]  # flags alone: the main job, as run_bench.py takes them
    target = COMMANDS[argv[0]][0]
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func or "main")(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
