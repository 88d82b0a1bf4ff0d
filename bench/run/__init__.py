"""Running a plan: CLI parsing (cli), the plan and its tasks (plan), long-lived worker
processes (worker, procs), the time budget (budget), results into the run directory (rows,
rundir), local execution (runner) and Ray (cluster). May import backends (in workers only),
bench.analysis and bench.core."""
