"""The one spec: algorithms, architectures, the GAN maths, update rules, the input stream,
data loaders, presets and suites. Imports nothing of ganbench outside bench.core, and no framework."""
