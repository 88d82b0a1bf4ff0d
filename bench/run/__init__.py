"""Running a plan: CLI parsing, one worker process per backend, the run directory and
resume. May import backends (in workers only), bench.analysis and bench.core."""
