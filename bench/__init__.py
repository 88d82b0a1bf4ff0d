"""ganbench's framework-neutral half, in layers whose imports point one way:

    bench.tools     measuring tools (evidence, overhead, profile_step, baselines/)
      -> bench.run        planning and running: CLI parsing, workers, run directories
        -> backends         one module per framework (outside bench/)
        -> bench.analysis   reading results: quality, report, plots, tables
          -> bench.core     the one spec: algorithms, nets, maths, optimizers, stream, data

Nothing under bench/core, bench/run or bench/analysis imports torch, tensorflow or jax;
among the tools, the hand-written loops in bench/tools/baselines do, each its own, and
profile_step's per-framework workers, each in its own process.
tests/test_layout.py holds the arrows to this order.
"""

import sys
from pathlib import Path

# The folder that holds bench/ and backends/: a checkout, or site-packages when installed.
# Workers import from it; results never go there (they default to ./results of the caller).
CODE_ROOT = Path(__file__).resolve().parent.parent


def default_results() -> Path:
    return Path.cwd() / "results"


def tolerant_console() -> None:
    """A character the console's encoding lacks (the ±, × and → of the tables, in an ASCII or
    Latin-1 locale) prints as '?' instead of ending a command whose results are written. Each
    command's entry point calls it; the files ganbench writes are UTF-8 whatever the locale."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
