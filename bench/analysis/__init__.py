"""Reading results: quality metrics, the MNIST classifier, plots, the report and tables.
Imports bench.core only; never a framework."""
