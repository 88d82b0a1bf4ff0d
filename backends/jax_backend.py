"""JAX backend: flax.linen modules applied purely, optax transforms, jit or lax.scan.

Steps are pure functions (params, opt_state, stats, inputs) -> (params, opt_state, stats,
metrics), compiled with their params, optimizer state and batch-norm running statistics
donated. `jit` calls one compiled critic step and one generator step from a Python loop
like the other backends; `scan` fuses a whole block (K generator iterations, each an
inner scan over its critic updates) into one executable. flax's Dense and Conv kernels
are (in, out) and HWIO, the canonical layouts, and the conv-transpose module below keeps
the canonical one too, so weights cross unchanged; only the names map (nn.Sequential
names its layers by position). Running statistics live in flax's "batch_stats"
collection: a training pass applies the nets with it mutable and threads the result on;
sample, critic and evaluate apply them read-only.

With spec.devices = N > 1 the steps run data parallel on a 1-d mesh ("data") over the
first N devices: parameters, optimizer state, statistics and the data set replicated,
every batch split by rows (NamedSharding, jit's in/out shardings). The step functions
are the one-device ones on global arrays; GSPMD partitions them and inserts the
all-reduces, so gradients are the global mean's and batch norm sees the global batch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, Mesh, NamedSharding, Sharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

from backends import common
from backends.common import check_mode, host_cores, probe_operand
from bench.core import gan, nets, optim
from bench.core.nets import Act, Arch, BatchNorm, Conv, ConvT, Crop, Dense, Flatten, Layer, Reshape
from bench.core.spec import Optimizer, RunSpec

_Params = Any  # one net's flax param tree: {"layers_0": {"kernel": ..., "bias": ...}, ...}
_Stats = Any  # one net's running statistics: {"layers_2": {"mean": ..., "var": ...}}; {} without batch norm
_NETS = ("G", "D")
_OPTAX_SLOT = {"m": "mu", "v": "nu"}  # canonical slot -> optax state field
_STATS = "batch_stats"


class Ops:
    mean = staticmethod(jnp.mean)
    softplus = staticmethod(jax.nn.softplus)
    sigmoid = staticmethod(jax.nn.sigmoid)
    sqrt = staticmethod(jnp.sqrt)

    @staticmethod
    def sum_sq_rows(x: jax.Array) -> jax.Array:
        return jnp.square(x).reshape(x.shape[0], -1).sum(1)


class _ConvTranspose(nn.Module):
    """PyTorch's ConvTranspose2d on NHWC with the canonical (kh, kw, in, out) kernel: a direct
    conv of the stride-dilated input with the kernel flipped in space, padded k-1-pad before
    and k-1-pad+out_pad after. (flax's nn.ConvTranspose pads the dilated input, not torch's way.)"""

    features: int
    k: int
    stride: int
    pad: int
    out_pad: int
    use_bias: bool
    param_dtype: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.k, self.k, x.shape[-1], self.features),
                            self.param_dtype)
        lo = self.k - 1 - self.pad
        y = jax.lax.conv_general_dilated(x, kernel[::-1, ::-1], (1, 1), [(lo, lo + self.out_pad)] * 2,
                                         lhs_dilation=(self.stride, self.stride),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
        return y


class _BatchNorm(nn.Module):
    """Batch norm as bench.core.nets defines it: the batch's mean and biased variance (the running
    statistics if `running`, for sampling); in a training pass (_STATS mutable) the running
    statistics move by PyTorch's rule, momentum the new batch's weight and the variance unbiased
    unless the layer says not. flax's nn.BatchNorm does neither."""

    momentum: float
    eps: float
    unbiased: bool
    param_dtype: Any
    running: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), self.param_dtype)
        shift = self.param("bias", nn.initializers.zeros, (c,), self.param_dtype)
        if self.running:
            run_mean, run_var = (self.get_variable(_STATS, k) for k in ("mean", "var"))
            return (x - run_mean) * jax.lax.rsqrt(run_var + self.eps) * scale + shift
        axes = tuple(range(x.ndim - 1))
        mean = x.mean(axes)
        centred = x - mean
        var = jnp.square(centred).mean(axes)
        if self.is_mutable_collection(_STATS):
            n, m = x.size // c, self.momentum
            run_mean = self.variable(_STATS, "mean", jnp.zeros, (c,), self.param_dtype)
            run_var = self.variable(_STATS, "var", jnp.ones, (c,), self.param_dtype)
            run_mean.value = (1 - m) * run_mean.value + m * mean
            run_var.value = (1 - m) * run_var.value + m * (var * (n / (n - 1)) if self.unbiased else var)
        return centred * jax.lax.rsqrt(var + self.eps) * scale + shift


def _reshape(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return x.reshape(x.shape[0], *shape)


def _flatten(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1)


def _crop(x: jax.Array, h: int, w: int) -> jax.Array:
    return x[:, :h, :w]


def _layer(layer: Layer, dtype: Any, running: bool = False) -> Callable:
    """running: batch norm normalises with its running statistics (a sampling net)."""
    if isinstance(layer, Dense):
        return nn.Dense(layer.n_out, use_bias=layer.bias, param_dtype=dtype)
    if isinstance(layer, Conv):
        p = layer.pad
        return nn.Conv(layer.c_out, (layer.k, layer.k), layer.stride, ((p, p), (p, p)), use_bias=layer.bias,
                       param_dtype=dtype)
    if isinstance(layer, ConvT):
        return _ConvTranspose(layer.c_out, layer.k, layer.stride, layer.pad, layer.out_pad, layer.bias, dtype)
    if isinstance(layer, BatchNorm):
        return _BatchNorm(layer.momentum, layer.eps, layer.unbiased, dtype, running)
    if isinstance(layer, Reshape):
        return partial(_reshape, shape=layer.shape)
    if isinstance(layer, Flatten):
        return _flatten
    if isinstance(layer, Crop):
        return partial(_crop, h=layer.h, w=layer.w)
    assert isinstance(layer, Act)
    if layer.kind == "leaky_relu":
        return partial(nn.leaky_relu, negative_slope=layer.slope)
    return {"relu": nn.relu, "sigmoid": nn.sigmoid, "tanh": jnp.tanh}[layer.kind]


def _flax_key(layers: tuple[Layer, ...], name: str) -> tuple[str, str]:
    """"G.2.w" -> ("layers_2", "kernel"); a batch norm's w is its "scale"."""
    _, i, kind = name.split(".")
    w = "scale" if isinstance(layers[int(i)], BatchNorm) else "kernel"
    return f"layers_{i}", {"w": w, "b": "bias", "mean": "mean", "var": "var"}[kind]


def _keys(arch: Arch, names: dict[str, tuple[int, ...]]) -> dict[str, dict[str, tuple[str, str]]]:
    """Per net: canonical name -> its path in the net's flax tree."""
    return {net: {n: _flax_key(layers, n) for n in names if n.startswith(net + ".")}
            for net, layers in arch.nets().items()}


def _to_tree(keys: dict[str, tuple[str, str]], arrays: Callable[[str], np.ndarray]) -> _Params:
    return flax.traverse_util.unflatten_dict({key: arrays(n) for n, key in keys.items()})


def _from_tree(keys: dict[str, tuple[str, str]], tree: _Params, suffix: str = "") -> dict[str, np.ndarray]:
    flat = flax.traverse_util.flatten_dict(tree)
    return {n + suffix: np.array(flat[key]) for n, key in keys.items()}  # copies: the buffers get donated


def _written(o: Optimizer, dtype: Any = np.float32) -> optax.GradientTransformation:
    """bench.core.optim.update as an optax transform, for every form but PyTorch's RMSprop. optax.adam
    forms 1 - b^t in float32, where 0.999 is not representable: 1 - 0.999 comes out 1.3e-5 low,
    every early step ~7e-6 long, and weights 3e-5 from PyTorch's after one step. -expm1(t log b),
    log b taken in float64 (PyTorch's bias corrections are Python floats) and rounded to the run's
    dtype, is within an ulp or two of it. State: optax's own Adam and RMS states, so the slots
    keep optax's field names (_OPTAX_SLOT)."""
    log_b1, log_b2 = (np.log(np.float64(b)).astype(dtype) for b in (o.beta1, o.beta2))

    def init(params: _Params):
        slot = {s: jax.tree.map(lambda p, s=s: jnp.full_like(p, o.slot_start(s)), params) for s in o.slots()}
        if o.is_adam:
            return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=slot["m"], nu=slot["v"])
        return optax.ScaleByRmsState(nu=slot["v"])

    def update(grads: _Params, state, params: _Params = None):
        bc, count = None, None
        if o.is_adam:
            count = state.count + 1
            bc = (-jnp.expm1(count * log_b1), -jnp.expm1(count * log_b2))
        slots = {s: getattr(state, _OPTAX_SLOT[s]) for s in o.slots()}

        def one(g, *values):
            # bench.core.optim.update from p = 0 yields exactly the update optax adds to the parameters
            step, new = optim.update(o, 0.0, g, dict(zip(o.slots(), values, strict=True)), bc, jnp.sqrt)
            return step, *(new[s] for s in o.slots())

        out = jax.tree.map(one, grads, *(slots[s] for s in o.slots()))
        step, *new = (jax.tree.map(lambda _, r, i=i: r[i], grads, out) for i in range(1 + len(o.slots())))
        fields = {_OPTAX_SLOT[s]: v for s, v in zip(o.slots(), new, strict=True)}
        if o.is_adam:
            return step, optax.ScaleByAdamState(count=count, **fields)
        return step, optax.ScaleByRmsState(**fields)

    return optax.GradientTransformation(init, update)


def _optimizer(o: Optimizer, dtype: Any = np.float32) -> optax.GradientTransformation:
    """The one place an optimizer form becomes an optax transform."""
    if o.name == "rmsprop":  # optax's defaults are not PyTorch's: decay 0.9, eps inside the root
        return optax.rmsprop(o.lr, decay=o.alpha, eps=o.eps, eps_in_sqrt=False, initial_scale=0.0)
    return _written(o, dtype)


def _apply(tx: optax.GradientTransformation, params: _Params, grads: _Params, state: Any) -> tuple[_Params, Any]:
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state


def apply_optimizer(o: Optimizer, p0: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    """This backend's optimizer on one parameter, one update per gradient (tests vs bench.core.optim)."""
    tx, p = _optimizer(o), jnp.asarray(p0, jnp.float32)
    state, out = tx.init(p), []
    for g in grads:
        p, state = _apply(tx, p, jnp.asarray(g, jnp.float32), state)
        out.append(np.array(p))
    return out


def _devices(kind: str, n: int) -> list[jax.Device]:
    """The first n devices of the platform."""
    try:
        devices = jax.devices(kind)
    except RuntimeError as e:  # jax raises, rather than returning [], for a platform it lacks
        raise RuntimeError(f"--device {kind}: jax sees no {kind.upper()} ({e})") from e
    if len(devices) < n:
        how = (f"split the host with XLA_FLAGS=--xla_force_host_platform_device_count={n} (or "
               f"jax.config.update('jax_num_cpu_devices', {n})) before jax starts; run_bench.py sets it"
               if kind == "cpu" else "make more GPUs visible (CUDA_VISIBLE_DEVICES)")
        raise RuntimeError(f"--devices {n}: jax sees only {len(devices)} {kind.upper()} device(s); {how}")
    return devices[:n]


class JaxBackend:
    name = "jax"

    def __init__(self, spec: RunSpec, arch: Arch, mode: str, device: str) -> None:
        check_mode(self.name, mode)
        self.devices = _devices(device, spec.devices)
        self.device = self.devices[0]
        self.mesh: Mesh | None = None  # one device: plain placement, nothing partitioned
        self.replicated: Sharding = SingleDeviceSharding(self.device)
        if spec.devices > 1:  # Auto axis: GSPMD propagates the shardings and inserts the collectives
            self.mesh = jax.make_mesh((spec.devices,), ("data",), (AxisType.Auto,), devices=self.devices)
            self.replicated = NamedSharding(self.mesh, P())
        self.spec, self.arch, self.mode, self.algo = spec, arch, mode, spec.algo
        # Both flags are process-wide and a process may hold backends of several precisions:
        # set them every time. "highest" keeps fp32 matmuls off TF32 on GPUs that have it.
        self.precision = "tensorfloat32" if spec.precision == "tf32" else "highest"
        jax.config.update("jax_default_matmul_precision", self.precision)
        jax.config.update("jax_enable_x64", spec.float_dtype == "float64")
        self.dtype = np.dtype(spec.float_dtype)
        self.nets = {net: nn.Sequential([_layer(layer, self.dtype) for layer in layers])
                     for net, layers in arch.nets().items()}
        # the generator for sample(): with the batch-norm running statistics if the spec asks for them
        self.sampler = nn.Sequential([_layer(layer, self.dtype, spec.sample_running_stats)
                                      for layer in arch.generator])
        # Compiled once per input shape: called eagerly, flax would dispatch (and, the first
        # time, compile) every operation on its own, at each evaluation's first call.
        self._sample = jax.jit(lambda g, stats, z: self.sampler.apply({"params": g, _STATS: stats}, z))
        self._score = jax.jit(partial(self._apply_net, "D"))
        self.keys = _keys(arch, nets.param_shapes(arch))  # trained parameters, the "params" collection
        self.stat_keys = _keys(arch, nets.buffer_shapes(arch))  # running statistics, _STATS
        self.opts = {"G": self.algo.g_opt, "D": self.algo.d_opt}
        self.tx = {net: _optimizer(o, self.dtype) for net, o in self.opts.items()}
        self.t = {"G": 0, "D": 0}  # updates so far, counted on the host: optax's rmsprop keeps no count
        # _jit(f, n, axes): f's first n arguments replicated (state, the data set), then batch arrays with
        # their batch dimension at these axes
        if mode == "jit":  # d, d_opt, stats, g, data | idx (B,), z, alpha;  g, g_opt, stats, d | z (B, Z)
            self.critic_step = self._jit(self._critic_update, 5, (0, 0, 0))
            self.generator_step = self._jit(self._generator_update, 4, (0,))
        elif mode == "scan":  # params, opt_state, stats, data | idx (K, C, B), z_d, alpha, z_g (K, B, Z)
            self.block_step = self._jit(self._train_block, 4, (2, 2, 2, 1))

    def _jit(self, f: Callable, n_replicated: int, batch_axes: tuple[int, ...]) -> Callable:
        """f compiled with its first three arguments (the state it replaces) donated; on a mesh with
        the shardings pinned: outputs replicated, host batch arrays split by rows as jit places them."""
        if self.mesh is None:
            return jax.jit(f, donate_argnums=(0, 1, 2))
        batch = tuple(NamedSharding(self.mesh, P(*[None] * a, "data")) for a in batch_axes)
        return jax.jit(f, donate_argnums=(0, 1, 2), in_shardings=(self.replicated,) * n_replicated + batch,
                       out_shardings=self.replicated)

    def _split(self, x: jax.Array) -> jax.Array:
        """Inside a step: pin x's rows to the mesh. Without it a gathered batch may be computed
        whole on every device, which gives the right numbers and no parallelism."""
        return x if self.mesh is None else jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, P("data")))

    def info(self) -> dict[str, str]:
        mesh = f"; mesh data x{len(self.devices)} (NamedSharding, GSPMD)" if self.mesh else ""
        cache = jax.config.jax_compilation_cache_dir  # the user's: compile_s may then be a cache hit
        cached = f"; persistent compilation cache {cache}" if cache else ""
        return {
            "framework_version": jax.__version__,
            "device_name": self.device.device_kind if self.device.platform == "gpu" else "cpu",
            "threads": f"{host_cores()} (XLA's own pool, one per core it may run on)",
            "precision": f"default_matmul_precision={self.precision} x64={jax.config.jax_enable_x64} "
            f"dtype={self.dtype}",
            "note": f"flax {flax.__version__}, optax {optax.__version__}{mesh}{cached}",
        }

    def matmul_gflops(self, n: int, reps: int) -> float:
        a = jax.device_put(probe_operand(n), self.device)
        matmul = jax.jit(jnp.matmul)
        return common.matmul_gflops(lambda: matmul(a, a), jax.block_until_ready, n, reps)

    def peak_memory_mb(self) -> float | None:
        if self.device.platform != "gpu":
            return None
        return max(d.memory_stats()["peak_bytes_in_use"] for d in self.devices) / 2**20  # the fullest device

    # -- state ---------------------------------------------------------------------------
    def _host(self, a: np.ndarray) -> np.ndarray:
        """Floats in the run's dtype (inputs, data, state); integers (indices) as they are."""
        a = np.asarray(a)
        return a.astype(self.dtype) if a.dtype.kind == "f" else a

    def load(self, state: dict[str, np.ndarray], data: np.ndarray) -> None:
        def arrays(name: str) -> np.ndarray:
            return self._host(state[name])

        self.params = jax.device_put({net: _to_tree(self.keys[net], arrays) for net in _NETS}, self.replicated)
        self.stats = jax.device_put({net: _to_tree(self.stat_keys[net], arrays) for net in _NETS}, self.replicated)
        self.opt_state = {}
        for net in _NETS:
            o, keys = self.opts[net], self.keys[net]
            self.t[net] = int(state.get(f"{net}:t", 0))
            slots = {
                _OPTAX_SLOT[s]: _to_tree(keys, lambda n, s=s, o=o: self._host(
                    state.get(f"{n}:{s}", np.full_like(state[n], o.slot_start(s)))))
                for s in o.slots()
            }
            if o.is_adam:  # its bias correction reads optax's own count
                slots["count"] = np.int32(self.t[net])
            opt = optax.tree_utils.tree_set(self.tx[net].init(self.params[net]), **slots)
            self.opt_state[net] = jax.device_put(opt, self.replicated)
        self.data = jax.device_put(self._host(data), self.replicated)  # every device gathers its own rows

    def export(self) -> dict[str, np.ndarray]:
        out = {}
        for net in _NETS:
            keys = self.keys[net]
            out.update(_from_tree(keys, self.params[net]))
            out.update(_from_tree(self.stat_keys[net], self.stats[net]))
            for s in self.opts[net].slots():
                out.update(_from_tree(keys, optax.tree_utils.tree_get(self.opt_state[net], _OPTAX_SLOT[s]), f":{s}"))
            out[f"{net}:t"] = np.array(self.t[net], dtype=np.int64)
        return out

    # -- training: pure functions of their arguments --------------------------------------
    def _apply_net(self, net: str, params: _Params, x: jax.Array) -> jax.Array:
        """A forward pass that is not training: running statistics neither read nor written."""
        return self.nets[net].apply({"params": params}, x)

    def _train_net(self, net: str, params: _Params, stats: _Stats, x: jax.Array) -> tuple[jax.Array, _Stats]:
        """A training forward pass: returns the output and the running statistics it moved."""
        y, new = self.nets[net].apply({"params": params, _STATS: stats}, x, mutable=[_STATS])
        return y, new.get(_STATS, {})

    def _critic_losses(self, d: _Params, g: _Params, stats: dict, x_real, z, alpha) -> tuple[dict, dict]:
        fake, s_g = self._train_net("G", g, stats["G"], z)
        fake = jax.lax.stop_gradient(fake)
        real_score, s_d = self._train_net("D", d, stats["D"], x_real)
        fake_score, s_d = self._train_net("D", d, s_d, fake)
        m = gan.critic_loss(self.algo, Ops, real_score, fake_score)
        if self.algo.gp_lambda:
            x_hat = gan.interpolate(alpha, x_real, fake)

            def summed_score(x: jax.Array) -> tuple[jax.Array, _Stats]:
                score, s = self._train_net("D", d, s_d, x)
                return score.sum(), s

            # rows are independent, so the gradient of the summed score is every row's at once
            grad, s_d = jax.grad(summed_score, has_aux=True)(x_hat)
            m["gp"] = gan.gradient_penalty(Ops, grad)
            m["d_loss"] = m["d_loss"] + self.algo.gp_lambda * m["gp"]
        return m, {"G": s_g, "D": s_d}

    def _generator_loss(self, g: _Params, d: _Params, stats: dict, z) -> tuple[jax.Array, dict]:
        fake, s_g = self._train_net("G", g, stats["G"], z)
        score, s_d = self._train_net("D", d, stats["D"], fake)
        return gan.generator_loss(self.algo, Ops, score), {"G": s_g, "D": s_d}

    def _clip(self, d: _Params) -> _Params:
        return jax.tree.map(lambda p: jnp.clip(p, -self.algo.clip, self.algo.clip), d)

    def _critic_update(self, d: _Params, d_opt, stats: dict, g: _Params, data, idx, z, alpha):
        if self.algo.clip and self.algo.clip_before_update:
            d = self._clip(d)

        x_real, z, alpha = (self._split(a) for a in (data[idx], z, alpha))

        def loss(d: _Params):
            m, s = self._critic_losses(d, g, stats, x_real, z, alpha)
            return m["d_loss"], (m, s)

        grads, (m, stats) = jax.grad(loss, has_aux=True)(d)
        d, d_opt = _apply(self.tx["D"], d, grads, d_opt)
        if self.algo.clip and not self.algo.clip_before_update:
            d = self._clip(d)
        return d, d_opt, stats, m

    def _generator_update(self, g: _Params, g_opt, stats: dict, d: _Params, z):
        # G's gradients only; the statistics ride along as auxiliary output
        (loss, stats), grads = jax.value_and_grad(self._generator_loss, has_aux=True)(g, d, stats, self._split(z))
        g, g_opt = _apply(self.tx["G"], g, grads, g_opt)
        return g, g_opt, stats, loss

    def _train_block(self, params: dict, opt_state: dict, stats: dict, data, idx, z_d, alpha, z_g):
        """K generator iterations as one scan; each runs its C critic updates as an inner scan."""

        def generator_iteration(carry, xs):
            (params, opt_state, stats), (idx, z_d, alpha, z_g) = carry, xs

            def critic_update(carry, xs):
                d, d_opt, stats, m = self._critic_update(*carry, params["G"], data, *xs)
                return (d, d_opt, stats), m

            (d, d_opt, stats), m = jax.lax.scan(critic_update, (params["D"], opt_state["D"], stats),
                                                (idx, z_d, alpha))
            m = {k: v[-1] for k, v in m.items()}  # the last critic update's values
            g, g_opt, stats, m["g_loss"] = self._generator_update(params["G"], opt_state["G"], stats, d, z_g)
            return ({"G": g, "D": d}, {"G": g_opt, "D": d_opt}, stats), m

        return jax.lax.scan(generator_iteration, (params, opt_state, stats), (idx, z_d, alpha, z_g))

    def train(self, block: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        idx, z_d, alpha, z_g = (self._host(block[k]) for k in ("idx", "z_d", "alpha", "z_g"))
        steps, n_critic = idx.shape[:2]
        p, o, s = self.params, self.opt_state, self.stats
        if self.mode == "scan":
            # on a mesh jit itself places (and splits) host arrays by its in_shardings
            inputs = (idx, z_d, alpha, z_g) if self.mesh else jax.device_put((idx, z_d, alpha, z_g), self.device)
            (self.params, self.opt_state, self.stats), m = self.block_step(p, o, s, self.data, *inputs)
        else:  # per-step host slices go in as arguments: indexing device arrays costs a dispatch each
            rows = []
            for k in range(steps):
                for c in range(n_critic):
                    p["D"], o["D"], s, m = self.critic_step(p["D"], o["D"], s, p["G"], self.data,
                                                            idx[k, c], z_d[k, c], alpha[k, c])
                p["G"], o["G"], s, m["g_loss"] = self.generator_step(p["G"], o["G"], s, p["D"], z_g[k])
                rows.append(m)
            self.stats = s
            m = {key: jnp.stack([r[key] for r in rows]) for key in rows[0]}
        self.t["D"] += steps * n_critic
        self.t["G"] += steps
        jax.block_until_ready((self.params, self.stats))
        return jax.device_get(m)  # the one sync per block

    def evaluate(self, block: dict[str, np.ndarray]) -> dict[str, float]:
        """Training-mode losses; the running statistics they move are dropped, not kept."""
        idx, z_d, alpha, z_g = (self._host(block[k]) for k in ("idx", "z_d", "alpha", "z_g"))
        d, g = self.params["D"], self.params["G"]
        m, _ = self._critic_losses(d, g, self.stats, self.data[idx[0, 0]], z_d[0, 0], alpha[0, 0])
        m["g_loss"], _ = self._generator_loss(g, d, self.stats, z_g[0])
        return {k: float(v) for k, v in m.items()}

    def sample(self, z: np.ndarray) -> np.ndarray:
        z = jax.device_put(self._host(z), self.replicated)
        return np.array(self._sample(self.params["G"], self.stats["G"], z))

    def critic(self, x: np.ndarray) -> np.ndarray:
        return np.array(self._score(self.params["D"], jax.device_put(self._host(x), self.replicated)))


BACKEND = JaxBackend
