"""Measuring tools run by hand: learning evidence, harness overhead, what bounds a step,
and the hand-written per-framework loops they time. May import every layer below."""
