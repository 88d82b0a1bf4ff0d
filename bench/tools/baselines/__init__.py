"""Hand-written training loops in the seeds' style, one per framework, with no harness.

They are the overhead baseline: the same MLP WGAN-GP step (same shapes, optimizer and
input stream) written as a person would write it in each framework. Each module imports
only its own framework (the one exception to bench/'s no-framework rule) and is run as
`python -m bench.tools.baselines.<framework>_loop --steps N --batch-size B`, printing JSON.
"""
