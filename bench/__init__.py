"""Framework-neutral half of ganbench: specs, data, input stream, timing, results.

Rule: nothing under bench/ imports torch, tensorflow or jax.
"""
