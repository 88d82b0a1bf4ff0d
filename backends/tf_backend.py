"""TensorFlow backend: tf.Variables and explicit updates, run eagerly, as a tf.function or XLA.

Keras optimizers use other formulas and defaults (GUIDE s.4), so the updates are the
spec's (bench.core.optim.update, whichever form it names), written on tf.Variables with
their own slot variables. Weights keep the canonical layouts (Dense
(in, out), Conv HWIO, which is TF's own; ConvT is transposed to TF's (kh, kw, out, in) in
the forward pass) and samples are NHWC, TF's default, so state crosses unchanged. Batch
norm is written out too (Keras' momentum means the old statistics' weight and it keeps
the biased variance): each net takes `update`, true in the training passes, which then
assign the running statistics. One function runs a whole block of generator iterations
with tf.range loops; graph and xla modes trace it once per setup.

With spec.devices = N > 1 it trains data-parallel under tf.distribute.MirroredStrategy
(N logical CPU devices, or the first N GPUs with NCCL): each replica takes its contiguous
rows of every global batch, gradients and batch-norm statistics are all-reduced means, so
the numbers are the one-device ones, and the optimizer updates every device's copy of
the variables from the same reduced gradients (StrategyExtended.update).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np

from backends import common
from backends.common import check_mode, host_cores, probe_operand
from bench.core import gan, nets, optim
from bench.core.nets import Act, Arch, BatchNorm, Conv, ConvT, Crop, Dense, Flatten, Layer, Reshape
from bench.core.spec import Optimizer, RunSpec


def _import_tensorflow():
    """`import tensorflow` also imports jax (tf.lite's optional jax converter) and scikit-learn
    (Keras's sklearn wrappers) where they are installed, in a try/except ImportError. Hidden
    for the import: no other framework in a TF worker, and TF starts in ~6 s instead of ~10."""
    hidden = [m for m in ("jax", "sklearn") if m not in sys.modules]
    sys.modules.update(dict.fromkeys(hidden))  # None: "import jax" raises ImportError
    try:
        import tensorflow
    finally:
        for m in hidden:
            del sys.modules[m]
    return tensorflow


tf = _import_tensorflow()

_Fn = Callable[[tf.Tensor], tf.Tensor]
# (x, update, running=False): update moves the batch-norm running statistics; running normalises with them
_Net = Callable[..., tf.Tensor]
_MEAN = tf.distribute.ReduceOp.MEAN


class Ops:
    mean = staticmethod(tf.reduce_mean)
    softplus = staticmethod(tf.nn.softplus)
    sigmoid = staticmethod(tf.sigmoid)
    sqrt = staticmethod(tf.sqrt)

    @staticmethod
    def sum_sq_rows(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.reshape(tf.square(x), [tf.shape(x)[0], -1]), 1)


def _replicas() -> int:
    """Data-parallel replicas computing in sync here: 1 outside strategy.run."""
    ctx = tf.distribute.get_replica_context()  # None in a strategy's cross-replica context
    return ctx.num_replicas_in_sync if ctx else 1


def _replica_mean(x):
    """The mean over replicas of a value each computed from an equal share of the global batch,
    so the global-batch value; differentiable (all_reduce's gradient is an all-reduce). x itself
    on one device."""
    return x if _replicas() == 1 else tf.distribute.get_replica_context().all_reduce(_MEAN, x)


def _dense(layer: Dense, w: tf.Variable) -> _Fn:
    return lambda x: x @ w


def _conv(layer: Conv, w: tf.Variable) -> _Fn:
    p = layer.pad
    return lambda x: tf.nn.conv2d(x, w, layer.stride, [[0, 0], [p, p], [p, p], [0, 0]])


def _conv_transpose(layer: ConvT, w: tf.Variable) -> _Fn:
    """PyTorch's ConvTranspose2d. TF's VALID transpose conv is the whole scatter, (i-1)s + k a
    side; asking for out_pad (< stride) more adds rows no input reaches, zeros, as torch's
    out_pad does; torch's output is that cropped by pad on each side."""
    s, k, p, extra = layer.stride, layer.k, layer.pad, layer.out_pad

    def conv_transpose(x: tf.Tensor) -> tf.Tensor:
        h, wd = x.shape[1:3]
        full = ((h - 1) * s + k + extra, (wd - 1) * s + k + extra)
        shape = [tf.shape(x)[0], *full, layer.c_out]
        y = tf.nn.conv2d_transpose(x, tf.transpose(w, [0, 1, 3, 2]), shape, s, "VALID")  # TF's: (kh, kw, out, in)
        return y[:, p : full[0] - p, p : full[1] - p]

    return conv_transpose


def _batch_norm(layer: BatchNorm, scale: tf.Variable, shift: tf.Variable, run_mean: tf.Variable,
                run_var: tf.Variable) -> _Net:
    """bench.core.nets' batch norm: the batch's mean and biased variance (the running statistics
    when `running`, for sampling); a training pass also moves the running statistics by PyTorch's
    rule (momentum = the new batch's weight; the variance unbiased unless the layer says not).
    Under a strategy, the global batch's: all-reduced mean, then all-reduced centred squares."""
    m = layer.momentum

    def batch_norm(x: tf.Tensor, update: bool, running: bool = False) -> tf.Tensor:
        if running:
            return (x - run_mean) * tf.math.rsqrt(run_var + layer.eps) * scale + shift
        axes = list(range(x.shape.rank - 1))
        mean = _replica_mean(tf.reduce_mean(x, axes))
        centred = x - mean
        var = _replica_mean(tf.reduce_mean(tf.square(centred), axes))
        if update:  # every replica assigns the same values (the variables aggregate ONLY_FIRST_REPLICA)
            n = tf.cast(tf.size(x) // layer.c * _replicas(), x.dtype)
            run_mean.assign((1 - m) * run_mean + m * mean)
            run_var.assign((1 - m) * run_var + m * (var * n / (n - 1) if layer.unbiased else var))
        return centred * tf.math.rsqrt(var + layer.eps) * scale + shift

    return batch_norm


def _stateless(layer: Layer, w: tf.Variable | None, b: tf.Variable | None) -> _Fn:
    """Every layer but batch norm: the same in training and in sampling."""
    if isinstance(layer, Dense | Conv | ConvT):
        f = {Dense: _dense, Conv: _conv, ConvT: _conv_transpose}[type(layer)](layer, w)
        return f if b is None else lambda x: f(x) + b
    if isinstance(layer, Reshape):
        return lambda x: tf.reshape(x, [-1, *layer.shape])
    if isinstance(layer, Flatten):
        return lambda x: tf.reshape(x, [-1, int(np.prod(x.shape[1:]))])  # NHWC order, the canonical one
    if isinstance(layer, Crop):
        return lambda x: x[:, : layer.h, : layer.w]
    assert isinstance(layer, Act)
    return {
        "relu": tf.nn.relu,
        "sigmoid": tf.sigmoid,
        "tanh": tf.tanh,
        # tf.nn.leaky_relu's alpha is a float32 attribute (0.2 is 1.5e-8 off): written out in float64
        "leaky_relu": lambda x: tf.nn.leaky_relu(x, layer.slope) if x.dtype == tf.float32
        else tf.where(x > 0, x, layer.slope * x),
    }[layer.kind]


def _layer(key: str, layer: Layer, params: dict[str, tf.Variable], stats: dict[str, tf.Variable]) -> _Net:
    w, b = params.get(f"{key}.w"), params.get(f"{key}.b")
    if isinstance(layer, BatchNorm):
        return _batch_norm(layer, w, b, stats[f"{key}.mean"], stats[f"{key}.var"])
    f = _stateless(layer, w, b)
    return lambda x, update, running=False: f(x)


def _sequential(net: str, layers: tuple[Layer, ...], params: dict[str, tf.Variable],
                stats: dict[str, tf.Variable]) -> _Net:
    fns = [_layer(f"{net}.{i}", layer, params, stats) for i, layer in enumerate(layers)]

    def forward(x: tf.Tensor, update: bool, running: bool = False) -> tf.Tensor:
        for f in fns:
            x = f(x, update, running)
        return x

    return forward


def _update(o: Optimizer, p: tf.Variable, g: tf.Tensor, slots: dict[str, tf.Variable], t: tf.Tensor) -> None:
    """One optimizer step of p in place; t is the 1-based step count."""
    bc = None
    if o.is_adam:
        # t is a graph tensor: form 1 - beta^t in float64 and round once, as PyTorch does on the host
        t64 = tf.cast(t, tf.float64)
        bc = tuple(tf.cast(1 - beta**t64, p.dtype) for beta in (o.beta1, o.beta2))
    new, values = optim.update(o, p, g, slots, bc, tf.sqrt)
    for s, v in values.items():
        slots[s].assign(v)
    p.assign(new)


def _slot(o: Optimizer, s: str, like) -> tf.Variable:
    return tf.Variable(tf.fill(tf.shape(like), tf.constant(o.slot_start(s), like.dtype)))


def _apply(t: tf.Variable, o: Optimizer, grads: list[tf.Tensor], params: list[tf.Variable],
           slots: list[dict[str, tf.Variable]]) -> None:
    """One optimizer step of params (one device's copies) and of their step count t."""
    t = t.assign_add(1)
    for p, g, s in zip(params, grads, slots, strict=True):
        _update(o, p, g, s, t)


def apply_optimizer(o: Optimizer, p0: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    """This backend's optimizer on one parameter, one update per gradient (tests vs bench.core.optim)."""
    p = tf.Variable(p0.astype(np.float32))
    slots = {s: _slot(o, s, p) for s in o.slots()}
    out = []
    for t, g in enumerate(grads, start=1):
        _update(o, p, tf.constant(g, tf.float32), slots, tf.constant(t))
        out.append(p.numpy())
    return out


def _threads() -> str:
    """The thread pools in force: a setting of 0 means TF's default, its environment variable
    or else one thread per schedulable core."""
    cores = host_cores()
    pools = {
        "intra_op": (tf.config.threading.get_intra_op_parallelism_threads(), "TF_NUM_INTRAOP_THREADS"),
        "inter_op": (tf.config.threading.get_inter_op_parallelism_threads(), "TF_NUM_INTEROP_THREADS"),
    }
    return " ".join(f"{k}={n or int(os.environ.get(env) or 0) or cores}" for k, (n, env) in pools.items())


def _mirrored(device: str, n: int) -> tuple[tf.distribute.MirroredStrategy, str]:
    """A MirroredStrategy over n devices and its all-reduce's name: the first n GPUs with NCCL, or
    n logical CPU devices (made before the runtime starts) reduced on one device, NCCL being GPU-only."""
    if device == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) < n:
            raise RuntimeError(f"--devices {n}: tensorflow sees {len(gpus)} GPU(s)")
        ops: tf.distribute.CrossDeviceOps = tf.distribute.NcclAllReduce()
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        if len(tf.config.get_logical_device_configuration(cpu) or ()) != n:
            try:
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
            except RuntimeError as e:
                raise RuntimeError(f"--devices {n}: the CPU is split only before TF's runtime starts ({e})") from e
        ops = tf.distribute.ReductionToOneDevice()
    devices = [f"/{device.upper()}:{i}" for i in range(n)]
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=ops), type(ops).__name__


class TFBackend:
    name = "tf"

    def __init__(self, spec: RunSpec, arch: Arch, mode: str, device: str) -> None:
        check_mode(self.name, mode)
        gpus = tf.config.list_physical_devices("GPU")
        if device == "gpu":
            if not gpus:
                raise RuntimeError("--device gpu: tensorflow sees no GPU")
            for g in gpus:  # only settable before the runtime starts, so not again
                if not tf.config.experimental.get_memory_growth(g):
                    tf.config.experimental.set_memory_growth(g, True)
        self.gpu = gpus[0] if device == "gpu" else None
        self.device = "/GPU:0" if device == "gpu" else "/CPU:0"
        self.spec, self.arch, self.mode, self.algo = spec, arch, mode, spec.algo
        self.opt = {"G": spec.algo.g_opt, "D": spec.algo.d_opt}
        tf.config.experimental.enable_tensor_float_32_execution(spec.precision == "tf32")  # default on
        self.dtype = tf.as_dtype(spec.float_dtype)  # every float: variables, slots, data, inputs
        self.strategy, self.note = None, ""
        if spec.devices > 1:
            self.strategy, ops = _mirrored(device, spec.devices)
            self.note = f"MirroredStrategy x{spec.devices} ({ops})"
        # Under the strategy, variables are MirroredVariables: one copy per device.
        with self.strategy.scope() if self.strategy else tf.device(self.device):
            # Placeholders until load(): weights come only from the NumPy init.
            self.params = {n: tf.Variable(tf.zeros(s, self.dtype)) for n, s in nets.param_shapes(arch).items()}
            self.slots = {
                name: {s: _slot(self.opt[name.split(".")[0]], s, p) for s in self.opt[name.split(".")[0]].slots()}
                for name, p in self.params.items()
            }
            # batch-norm running statistics: state, assigned by training passes, never by an optimizer;
            # every replica assigns the same global-batch values, so the first replica's is the one to keep
            self.stats = {n: tf.Variable(tf.zeros(s, self.dtype), trainable=False,
                                         aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
                          for n, s in nets.buffer_shapes(arch).items()}
            self.t = {net: tf.Variable(tf.constant(0, tf.int64)) for net in ("G", "D")}
        self.G = _sequential("G", arch.generator, self.params, self.stats)
        self.D = _sequential("D", arch.critic, self.params, self.stats)
        self.names = {net: [n for n in self.params if n.startswith(net + ".")] for net in ("G", "D")}
        # The critic's metric names, from gan.critic_loss itself, so loop state can be preallocated.
        zero = tf.zeros([], self.dtype)
        self.critic_keys = (*gan.critic_loss(self.algo, Ops, zero, zero), *(("gp",) if self.algo.gp_lambda else ()))
        self.traces = 0  # Python-side body runs: one per trace in graph/xla, one per block in eager
        self.train_steps = self._train_steps
        self.critic_grads, self.generator_grads, self.apply = self._critic_grads, self._generator_grads, _apply
        if mode == "xla" and not self.strategy:
            self.note = "XLA compiles once per block shape (K x C)"
        elif mode == "xla":
            # MirroredStrategy allows no sync point (all-reduce, merge_call) inside a nested XLA function on
            # CPUs (GPUs too go this one way), so XLA compiles each replica's losses and gradients and each
            # device's optimizer step; the all-reduces and the block loops stay a TF graph.
            self.apply = tf.function(_apply, jit_compile=True)
            if self.stats:
                self.note += "; XLA compiles the optimizer steps only (batch norm all-reduces in the forward pass)"
            else:
                self.critic_grads = tf.function(self._critic_grads, jit_compile=True)
                self.generator_grads = tf.function(self._generator_grads, jit_compile=True)
                self.note += "; XLA compiles each replica's losses and gradients and each optimizer step"
        if mode != "eager":
            x_rank = len(arch.x_shape)
            b, z = spec.batch_size, arch.z_dim
            signature = [  # None for K and C: a short last block or a new n_critic does not retrace
                tf.TensorSpec([None, *arch.x_shape], self.dtype),
                tf.TensorSpec([None, None, b], tf.int32),
                tf.TensorSpec([None, None, b, z], self.dtype),
                tf.TensorSpec([None, None, b, *(1,) * x_rank], self.dtype),
                tf.TensorSpec([None, b, z], self.dtype),
            ]
            jit = mode == "xla" and not self.strategy
            self.train_steps = tf.function(self._train_steps, input_signature=signature, jit_compile=jit)

    def info(self) -> dict[str, str]:
        dev = tf.config.experimental.get_device_details(self.gpu).get("device_name", "gpu") if self.gpu else "cpu"
        return {
            "framework_version": tf.__version__,
            "device_name": dev,
            "threads": _threads(),
            "precision": f"tf32={tf.config.experimental.tensor_float_32_execution_enabled()} "
            f"dtype={self.dtype.name}",
            "note": self.note,
        }

    def matmul_gflops(self, n: int, reps: int) -> float:
        with tf.device(self.device):
            a = tf.constant(probe_operand(n))
            matmul = tf.function(tf.linalg.matmul)
            return common.matmul_gflops(lambda: matmul(a, a), lambda out: out.numpy(), n, reps)

    def peak_memory_mb(self) -> float | None:
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20 if self.gpu else None

    # -- state ---------------------------------------------------------------------------
    def _host(self, a: np.ndarray) -> np.ndarray:
        """Floats in the run's dtype (the harness hands float32); integers (indices) as they are."""
        a = np.asarray(a)
        return a.astype(self.dtype.as_numpy_dtype) if a.dtype.kind == "f" else a

    def load(self, state: dict[str, np.ndarray], data: np.ndarray) -> None:
        for name, p in self.params.items():
            p.assign(self._host(state[name]))
            o = self.opt[name.split(".")[0]]
            for s, v in self.slots[name].items():
                v.assign(self._host(state.get(f"{name}:{s}", np.full(p.shape, o.slot_start(s)))))
        for name, v in self.stats.items():
            v.assign(self._host(state[name]))
        for net, t in self.t.items():
            t.assign(int(state.get(f"{net}:t", 0)))
        with tf.device(self.device):
            self.data = tf.identity(self._host(data))  # identity runs on the scoped device: one copy there

    def export(self) -> dict[str, np.ndarray]:
        out = {name: v.numpy() for name, v in (self.params | self.stats).items()}
        for name, slots in self.slots.items():
            out.update({f"{name}:{s}": v.numpy() for s, v in slots.items()})
        for net, t in self.t.items():
            out[f"{net}:t"] = np.array(t.numpy(), dtype=np.int64)
        return out

    # -- training ------------------------------------------------------------------------
    def _critic_losses(self, x_real, z, alpha, update: bool) -> dict[str, tf.Tensor]:
        """update: a training pass, each net application moving the running statistics once."""
        fake = self.G(z, update)  # carries no gradient: callers' tapes watch only D
        m = gan.critic_loss(self.algo, Ops, self.D(x_real, update), self.D(fake, update))
        if self.algo.gp_lambda:
            x_hat = gan.interpolate(alpha, x_real, fake)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x_hat)
                score = tf.reduce_sum(self.D(x_hat, update))
            m["gp"] = gan.gradient_penalty(Ops, tape.gradient(score, x_hat))
            m["d_loss"] = m["d_loss"] + self.algo.gp_lambda * m["gp"]
        return m

    def _clip(self) -> None:
        for p in (self.params[n] for n in self.names["D"]):
            p.assign(tf.clip_by_value(p, -self.algo.clip, self.algo.clip))  # every device's copy under a strategy

    @staticmethod
    def _share(*batches: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """This replica's rows of global batches: replica r of N takes rows [r B/N, (r+1) B/N)."""
        n = _replicas()
        if n == 1:
            return batches
        b = batches[0].shape[0] // n
        r = tf.get_static_value(tf.distribute.get_replica_context().replica_id_in_sync_group)
        return tuple(x[r * b : (r + 1) * b] for x in batches)

    def _critic_grads(self, x_real, z, alpha) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
        """A training pass's critic metrics and D gradients on this replica's rows."""
        params = [self.params[n] for n in self.names["D"]]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(params)
            m = self._critic_losses(x_real, z, alpha, update=True)
        return m, tape.gradient(m["d_loss"], params)

    def _generator_grads(self, z) -> tuple[tf.Tensor, list[tf.Tensor]]:
        params = [self.params[n] for n in self.names["G"]]
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(params)  # no critic gradients
            loss = gan.generator_loss(self.algo, Ops, self.D(self.G(z, True), True))
        return loss, tape.gradient(loss, params)

    def _critic_replica(self, data, idx, z_d, alpha, k, c) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
        """Critic update (k, c) on one replica: its metrics and the replica-mean (global-batch) gradients."""
        with tf.device(self.device):  # where the data and the block live: only this replica's rows leave it
            idx, z, alpha = self._share(idx[k, c], z_d[k, c], alpha[k, c])
            x_real = tf.gather(data, idx)
        m, grads = self.critic_grads(x_real, z, alpha)
        return m, _replica_mean(grads)

    def _generator_replica(self, z_g, k) -> tuple[tf.Tensor, list[tf.Tensor]]:
        with tf.device(self.device):
            (z,) = self._share(z_g[k])
        loss, grads = self.generator_grads(z)
        return loss, _replica_mean(grads)

    def _on_replicas(self, fn: Callable, *args) -> tuple:
        """fn(*args) -> (metrics, gradients) on every replica: the metrics' replica mean (the global
        batch's values) and the gradients, all-reduced already, per replica."""
        if not self.strategy:
            return fn(*args)
        metrics, grads = self.strategy.run(fn, args)
        return self.strategy.reduce(_MEAN, metrics, axis=None), grads

    def _step(self, net: str, grads) -> None:
        """One optimizer step of net's parameters; under a strategy on every device's copy, each from
        that device's (identical) reduced gradients."""
        names = self.names[net]
        args = (self.opt[net], grads, [self.params[n] for n in names], [self.slots[n] for n in names])
        if self.strategy:
            self.strategy.extended.update(self.t[net], self.apply, args)
        else:
            self.apply(self.t[net], *args)

    def _critic_update(self, data, idx, z_d, alpha, k, c) -> dict[str, tf.Tensor]:
        if self.algo.clip and self.algo.clip_before_update:
            self._clip()
        m, grads = self._on_replicas(self._critic_replica, data, idx, z_d, alpha, k, c)
        self._step("D", grads)
        if self.algo.clip and not self.algo.clip_before_update:
            self._clip()
        return m

    def _generator_update(self, z_g, k) -> tf.Tensor:
        loss, grads = self._on_replicas(self._generator_replica, z_g, k)
        self._step("G", grads)
        return loss

    def _train_steps(self, data, idx, z_d, alpha, z_g) -> dict[str, tf.Tensor]:
        """K generator iterations of C critic updates each; tf.range loops, so a traced
        block is one graph (autograph while loops) whatever K and C are."""
        self.traces += 1
        steps = tf.shape(idx)[0]
        out = {key: tf.TensorArray(self.dtype, size=steps) for key in (*self.critic_keys, "g_loss")}
        for k in tf.range(steps):
            m = {key: tf.zeros([], self.dtype) for key in self.critic_keys}  # loop state must exist before the loop
            for c in tf.range(tf.shape(idx)[1]):
                m = self._critic_update(data, idx, z_d, alpha, k, c)
            m["g_loss"] = self._generator_update(z_g, k)
            out = {key: ta.write(k, m[key]) for key, ta in out.items()}
        return {key: ta.stack() for key, ta in out.items()}

    def _inputs(self, block: dict[str, np.ndarray]) -> list[tf.Tensor]:
        return [tf.constant(self._host(block[k])) for k in ("idx", "z_d", "alpha", "z_g")]

    def train(self, block: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with tf.device(self.device):
            m = self.train_steps(self.data, *self._inputs(block))
        return {k: v.numpy() for k, v in m.items()}  # the one sync per block

    def evaluate(self, block: dict[str, np.ndarray]) -> dict[str, float]:
        with tf.device(self.device):
            idx, z_d, alpha, z_g = self._inputs(block)
            m = self._critic_losses(tf.gather(self.data, idx[0, 0]), z_d[0, 0], alpha[0, 0], update=False)
            m["g_loss"] = gan.generator_loss(self.algo, Ops, self.D(self.G(z_g[0], False), False))
        return {k: float(v) for k, v in m.items()}

    def sample(self, z: np.ndarray) -> np.ndarray:
        with tf.device(self.device):
            return self.G(tf.constant(self._host(z)), False, self.spec.sample_running_stats).numpy()

    def critic(self, x: np.ndarray) -> np.ndarray:
        with tf.device(self.device):
            return self.D(tf.constant(self._host(x)), False).numpy()


BACKEND = TFBackend
