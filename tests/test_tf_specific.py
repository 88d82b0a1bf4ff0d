"""TensorFlow-only checks: graph and XLA modes trace the block function once per setup, fp64
runs keep every float in float64, a missing GPU is an error, and the module imports no other
framework of its own accord."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, require, small_spec, stream_for, train

from bench.core.nets import ARCHS, init_weights


@pytest.mark.parametrize("mode", ["graph", "xla"])
def test_block_function_traced_once(mode):
    require("tf")
    # Arjovsky-style warm-up (2 critic updates at step 0, then 5) in blocks of 3: K and C both vary.
    spec = small_spec("wgan", "toy_mlp", batch=4, steps=6, n_critic_warm=2, warm_steps=1)
    spec = dataclasses.replace(spec, block=3)
    assert [(b.steps, b.n_critic) for b in stream_for(spec).blocks(0, 6, 3)] == [(1, 2), (3, 5), (2, 5)]
    m, backend = train("tf", mode, spec, 6)
    assert backend.traces == 1
    assert all(v.shape == (6,) for v in m.values())


def test_fp64_run_is_float64_throughout():
    """Variables, slots, running statistics, metrics and samples are float64 although the
    harness hands float32 arrays; batch-norm statistics move in the traced block function."""
    require("tf")
    spec = dataclasses.replace(small_spec("wgan", "dcgan28_small", batch=4, steps=2, n_critic=1), precision="fp64")
    m, backend = train("tf", "graph", spec, 2)
    assert backend.traces == 1 and "dtype=float64" in backend.info()["precision"]
    assert all(v.dtype == np.float64 for v in m.values())
    state, init = backend.export(), init_weights(ARCHS["dcgan28_small"], spec.seed)
    assert all(v.dtype == np.float64 for k, v in state.items() if not k.endswith(":t"))
    assert not np.allclose(state["G.2.mean"], init["G.2.mean"])
    assert backend.sample(stream_for(spec).fixed_z(3)).dtype == np.float64


def test_gpu_request_without_gpu_fails():
    require("tf")
    import tensorflow as tf

    from backends.tf_backend import TFBackend

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no GPU"):
        TFBackend(small_spec("gan"), ARCHS["mlp"], "graph", "gpu")


def test_hiding_jax_from_tensorflow_is_undone():
    """The TF backend hides jax and scikit-learn from `import tensorflow` (see
    _import_tensorflow); afterwards both import normally in the same process."""
    require("tf")
    code = ("import sys, importlib.util, backends.tf_backend; assert 'sklearn' not in sys.modules; "
            "[__import__(m) for m in ('jax', 'sklearn') if importlib.util.find_spec(m)]")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
