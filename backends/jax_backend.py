"""JAX backend: flax.linen modules applied purely, optax transforms, jit or lax.scan.

Steps are pure functions (params, opt_state, inputs) -> (params, opt_state, metrics),
compiled with their params and optimizer state donated. `jit` calls one compiled critic
step and one generator step from a Python loop like the other backends; `scan` fuses a
whole block (K generator iterations, each an inner scan over its critic updates) into
one executable. flax's Dense kernel is (in, out), the canonical layout, so weights cross
unchanged; only the names map (nn.Sequential names its layers by position).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from bench import gan, optim
from bench.nets import Act, Arch, Dense, Layer, param_shapes
from bench.spec import Optimizer, RunSpec

Params = Any  # one net's flax param tree: {"layers_0": {"kernel": ..., "bias": ...}, ...}
NETS = ("G", "D")
OPTAX_SLOT = {"m": "mu", "v": "nu"}  # canonical slot -> optax state field


class Ops:
    mean = staticmethod(jnp.mean)
    softplus = staticmethod(jax.nn.softplus)
    sigmoid = staticmethod(jax.nn.sigmoid)
    sqrt = staticmethod(jnp.sqrt)

    @staticmethod
    def sum_sq_rows(x: jax.Array) -> jax.Array:
        return jnp.square(x).reshape(x.shape[0], -1).sum(1)


def _layer(layer: Layer) -> Callable:
    if isinstance(layer, Dense):
        return nn.Dense(layer.n_out, use_bias=layer.bias)
    if not isinstance(layer, Act):
        raise NotImplementedError(f"jax backend: no {type(layer).__name__} layer yet (dense nets only)")
    if layer.kind == "leaky_relu":
        return partial(nn.leaky_relu, negative_slope=layer.slope)
    return {"relu": nn.relu, "sigmoid": nn.sigmoid, "tanh": jnp.tanh}[layer.kind]


def _flax_key(name: str) -> tuple[str, str]:
    """"G.2.w" -> ("layers_2", "kernel")."""
    _, i, kind = name.split(".")
    return f"layers_{i}", {"w": "kernel", "b": "bias"}[kind]


def _to_tree(names: list[str], arrays: Callable[[str], np.ndarray]) -> Params:
    return flax.traverse_util.unflatten_dict({_flax_key(n): arrays(n) for n in names})


def _from_tree(names: list[str], tree: Params, suffix: str = "") -> dict[str, np.ndarray]:
    flat = flax.traverse_util.flatten_dict(tree)
    return {n + suffix: np.array(flat[_flax_key(n)]) for n in names}  # copies: the buffers get donated


def _adam(o: Optimizer) -> optax.GradientTransformation:
    """bench.optim.adam as an optax transform. optax.adam forms 1 - b^t in float32, where
    0.999 is not representable: 1 - 0.999 comes out 1.3e-5 low, every early step ~7e-6 long,
    and weights 3e-5 from PyTorch's after one step. -expm1(t log b), log b taken in float64
    (PyTorch's bias corrections are Python floats), is within an ulp or two."""
    log_b1, log_b2 = np.float32(np.log(o.beta1)), np.float32(np.log(o.beta2))

    def init(params: Params) -> optax.ScaleByAdamState:
        zeros = optax.tree.zeros_like(params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update(grads: Params, state: optax.ScaleByAdamState, params: Params = None):
        t = state.count + 1
        bc1, bc2 = -jnp.expm1(t * log_b1), -jnp.expm1(t * log_b2)
        # bench.optim.adam from p = 0 yields exactly the update optax adds to the parameters
        out = jax.tree.map(lambda g, m, v: optim.adam(o, 0.0, g, m, v, (bc1, bc2), jnp.sqrt),
                           grads, state.mu, state.nu)
        step, mu, nu = (jax.tree.map(lambda _, r, i=i: r[i], grads, out) for i in range(3))
        return step, optax.ScaleByAdamState(count=t, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def _optimizer(o: Optimizer) -> optax.GradientTransformation:
    if o.name == "adam":
        return _adam(o)
    # optax's defaults are not the spec's PyTorch form: decay 0.9, eps inside the root
    return optax.rmsprop(o.lr, decay=o.alpha, eps=o.eps, eps_in_sqrt=False, initial_scale=0.0)


def _apply(tx: optax.GradientTransformation, params: Params, grads: Params, state: Any) -> tuple[Params, Any]:
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state


def apply_optimizer(o: Optimizer, p0: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    """This backend's optimizer on one parameter, one update per gradient (tests vs bench.optim)."""
    tx, p = _optimizer(o), jnp.asarray(p0, jnp.float32)
    state, out = tx.init(p), []
    for g in grads:
        p, state = _apply(tx, p, jnp.asarray(g, jnp.float32), state)
        out.append(np.array(p))
    return out


def _device(kind: str) -> jax.Device:
    try:
        return jax.devices(kind)[0]
    except RuntimeError as e:  # jax raises, rather than returning [], for a platform it lacks
        raise RuntimeError(f"--device {kind}: jax sees no {kind.upper()} ({e})") from e


class JaxBackend:
    name = "jax"

    def __init__(self, spec: RunSpec, arch: Arch, mode: str, device: str) -> None:
        self.device = _device(device)
        self.spec, self.arch, self.mode, self.algo = spec, arch, mode, spec.algo
        # process-wide; "highest" keeps fp32 matmuls off TF32 on GPUs that have it
        self.precision = "tensorfloat32" if spec.precision == "tf32" else "highest"
        jax.config.update("jax_default_matmul_precision", self.precision)
        self.nets = {net: nn.Sequential([_layer(layer) for layer in layers]) for net, layers in arch.nets().items()}
        self.names = {net: [n for n in param_shapes(arch) if n.startswith(net + ".")] for net in NETS}
        self.opts = {"G": self.algo.g_opt, "D": self.algo.d_opt}
        self.tx = {net: _optimizer(o) for net, o in self.opts.items()}
        self.t = {"G": 0, "D": 0}  # updates so far, counted on the host: optax's rmsprop keeps no count
        if mode == "jit":
            self.critic_step = jax.jit(self._critic_update, donate_argnums=(0, 1))
            self.generator_step = jax.jit(self._generator_update, donate_argnums=(0, 1))
        elif mode == "scan":
            self.block_step = jax.jit(self._train_block, donate_argnums=(0, 1))
        else:
            raise ValueError(f"jax has no mode {mode!r}")

    def info(self) -> dict[str, str]:
        return {
            "framework_version": jax.__version__,
            "device_name": self.device.device_kind if self.device.platform == "gpu" else "cpu",
            "threads": f"{os.cpu_count()} (XLA's own pool, one per core)",
            "precision": f"default_matmul_precision={self.precision} x64={jax.config.jax_enable_x64}",
            "note": f"flax {flax.__version__}, optax {optax.__version__}",
        }

    def matmul_gflops(self, n: int, reps: int) -> float:
        a = jax.device_put(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32), self.device)
        matmul = jax.jit(jnp.matmul)
        matmul(a, a).block_until_ready()  # compile outside the clock
        t0 = time.perf_counter()
        for _ in range(reps):
            out = matmul(a, a)
        out.block_until_ready()
        return 2.0 * n**3 * reps / (time.perf_counter() - t0) / 1e9

    def peak_memory_mb(self) -> float | None:
        if self.device.platform != "gpu":
            return None
        return self.device.memory_stats()["peak_bytes_in_use"] / 2**20

    # -- state ---------------------------------------------------------------------------
    def load(self, state: dict[str, np.ndarray], data: np.ndarray) -> None:
        self.params = jax.device_put({net: _to_tree(self.names[net], state.__getitem__) for net in NETS}, self.device)
        self.opt_state = {}
        for net in NETS:
            o, names = self.opts[net], self.names[net]
            self.t[net] = int(state.get(f"{net}:t", 0))
            slots = {
                OPTAX_SLOT[s]: _to_tree(names, lambda n, s=s: state.get(f"{n}:{s}", np.zeros_like(state[n])))
                for s in o.slots()
            }
            if o.name == "adam":  # its bias correction reads optax's own count
                slots["count"] = np.int32(self.t[net])
            opt = optax.tree_utils.tree_set(self.tx[net].init(self.params[net]), **slots)
            self.opt_state[net] = jax.device_put(opt, self.device)
        self.data = jax.device_put(data, self.device)

    def export(self) -> dict[str, np.ndarray]:
        out = {}
        for net in NETS:
            names = self.names[net]
            out.update(_from_tree(names, self.params[net]))
            for s in self.opts[net].slots():
                out.update(_from_tree(names, optax.tree_utils.tree_get(self.opt_state[net], OPTAX_SLOT[s]), f":{s}"))
            out[f"{net}:t"] = np.array(self.t[net], dtype=np.int64)
        return out

    # -- training: pure functions of their arguments --------------------------------------
    def _apply_net(self, net: str, params: Params, x: jax.Array) -> jax.Array:
        return self.nets[net].apply({"params": params}, x)

    def _critic_losses(self, d: Params, g: Params, x_real, z, alpha) -> dict[str, jax.Array]:
        fake = jax.lax.stop_gradient(self._apply_net("G", g, z))
        m = gan.critic_loss(self.algo, Ops, self._apply_net("D", d, x_real), self._apply_net("D", d, fake))
        if self.algo.gp_lambda:
            x_hat = gan.interpolate(alpha, x_real, fake)
            # rows are independent, so the gradient of the summed score is every row's at once
            grad = jax.grad(lambda x: self._apply_net("D", d, x).sum())(x_hat)
            m["gp"] = gan.gradient_penalty(Ops, grad)
            m["d_loss"] = m["d_loss"] + self.algo.gp_lambda * m["gp"]
        return m

    def _generator_loss(self, g: Params, d: Params, z) -> jax.Array:
        return gan.generator_loss(self.algo, Ops, self._apply_net("D", d, self._apply_net("G", g, z)))

    def _clip(self, d: Params) -> Params:
        return jax.tree.map(lambda p: jnp.clip(p, -self.algo.clip, self.algo.clip), d)

    def _critic_update(self, d: Params, d_opt, g: Params, data, idx, z, alpha):
        if self.algo.clip and self.algo.clip_before_update:
            d = self._clip(d)

        def loss(d: Params):
            m = self._critic_losses(d, g, data[idx], z, alpha)
            return m["d_loss"], m

        grads, m = jax.grad(loss, has_aux=True)(d)
        d, d_opt = _apply(self.tx["D"], d, grads, d_opt)
        if self.algo.clip and not self.algo.clip_before_update:
            d = self._clip(d)
        return d, d_opt, m

    def _generator_update(self, g: Params, g_opt, d: Params, z):
        loss, grads = jax.value_and_grad(self._generator_loss)(g, d, z)  # G's gradients only
        g, g_opt = _apply(self.tx["G"], g, grads, g_opt)
        return g, g_opt, loss

    def _train_block(self, params: dict, opt_state: dict, data, idx, z_d, alpha, z_g):
        """K generator iterations as one scan; each runs its C critic updates as an inner scan."""

        def generator_iteration(carry, xs):
            (params, opt_state), (idx, z_d, alpha, z_g) = carry, xs

            def critic_update(carry, xs):
                d, d_opt, m = self._critic_update(*carry, params["G"], data, *xs)
                return (d, d_opt), m

            (d, d_opt), m = jax.lax.scan(critic_update, (params["D"], opt_state["D"]), (idx, z_d, alpha))
            m = {k: v[-1] for k, v in m.items()}  # the last critic update's values
            g, g_opt, m["g_loss"] = self._generator_update(params["G"], opt_state["G"], d, z_g)
            return ({"G": g, "D": d}, {"G": g_opt, "D": d_opt}), m

        return jax.lax.scan(generator_iteration, (params, opt_state), (idx, z_d, alpha, z_g))

    def train(self, block: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        idx, z_d, alpha, z_g = (block[k] for k in ("idx", "z_d", "alpha", "z_g"))
        steps, n_critic = idx.shape[:2]
        p, o = self.params, self.opt_state
        if self.mode == "scan":
            inputs = jax.device_put((idx, z_d, alpha, z_g), self.device)
            (self.params, self.opt_state), m = self.block_step(p, o, self.data, *inputs)
        else:  # per-step host slices go in as arguments: indexing device arrays costs a dispatch each
            rows = []
            for k in range(steps):
                for c in range(n_critic):
                    p["D"], o["D"], m = self.critic_step(p["D"], o["D"], p["G"], self.data,
                                                         idx[k, c], z_d[k, c], alpha[k, c])
                p["G"], o["G"], m["g_loss"] = self.generator_step(p["G"], o["G"], p["D"], z_g[k])
                rows.append(m)
            m = {key: jnp.stack([r[key] for r in rows]) for key in rows[0]}
        self.t["D"] += steps * n_critic
        self.t["G"] += steps
        jax.block_until_ready(self.params)
        return jax.device_get(m)  # the one sync per block

    def evaluate(self, block: dict[str, np.ndarray]) -> dict[str, float]:
        d, g = self.params["D"], self.params["G"]
        x_real = self.data[block["idx"][0, 0]]
        m = self._critic_losses(d, g, x_real, block["z_d"][0, 0], block["alpha"][0, 0])
        m["g_loss"] = self._generator_loss(g, d, block["z_g"][0])
        return {k: float(v) for k, v in m.items()}

    def sample(self, z: np.ndarray) -> np.ndarray:
        return np.array(self._apply_net("G", self.params["G"], jax.device_put(z, self.device)))


BACKEND = JaxBackend
