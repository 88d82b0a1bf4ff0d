"""The one spec: algorithms, architectures, the GAN maths, update rules, the input stream,
data loaders and presets. Imports nothing of ganbench outside bench.core, and no framework."""
