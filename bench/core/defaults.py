"""What a run takes when the user names only part of a setup: each architecture's data set,
batch and length, and each data set's architecture. The CLI, the suites and the tests read
these; nothing else defines them."""

from __future__ import annotations

# The sources' batch sizes, and enough steps to time on a CPU. The mlp's 2,000 are where
# WGAN-GP first covers all 10 MNIST classes in every backend (evaluated every 250 steps: 9
# classes at 1,750), so the main command shows learning, not only speed.
ARCH_DEFAULTS = {
    "mlp": {"batch_size": 64, "steps": 2000}, "mlp_z10": {"batch_size": 64, "steps": 2000},
    "toy_mlp": {"batch_size": 256, "steps": 200},
    "dcgan28": {"batch_size": 50, "steps": 60}, "dcgan28_small": {"batch_size": 64, "steps": 100},
    "dcgan32": {"batch_size": 64, "steps": 60}, "dcgan64": {"batch_size": 64, "steps": 30},
    "dcgan64_tf": {"batch_size": 64, "steps": 30},
}
DATASET_ARCH = {"mnist": "mlp", "svhn": "dcgan32", "celeba": "dcgan64",
                "noise28": "mlp", "noise32": "dcgan32", "noise64": "dcgan64",
                "8gaussians": "toy_mlp", "25gaussians": "toy_mlp", "swissroll": "toy_mlp"}
ARCH_DATASET = {"mlp": "mnist", "mlp_z10": "mnist", "toy_mlp": "8gaussians", "dcgan28": "mnist",
                "dcgan28_small": "mnist", "dcgan32": "svhn", "dcgan64": "celeba", "dcgan64_tf": "celeba"}
DENSE_ARCHS = ("mlp", "toy_mlp")  # the standard suite's (mlp_z10 is seed 002's variant of mlp)
CONV_ARCHS = ("dcgan28", "dcgan28_small", "dcgan32", "dcgan64", "dcgan64_tf")
