"""MLP WGAN-GP as a person writes it in JAX: flax.linen modules, optax.adam, one jax.jit'd
function per critic and generator step called from a Python loop; timed like the harness."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from bench.tools.baselines.common import BETAS, LAM, LR, N_CRITIC, setup, time_blocks


def main() -> None:
    args, w, x, stream = setup()
    dev = jax.devices("gpu" if args.device == "gpu" else "cpu")[0]
    G = nn.Sequential([nn.Dense(128), nn.relu, nn.Dense(784), nn.sigmoid])
    D = nn.Sequential([nn.Dense(128), nn.relu, nn.Dense(1)])

    def params(net):
        return {f"layers_{i}": {"kernel": w[f"{net}.{i}.w"], "bias": w[f"{net}.{i}.b"]} for i in (0, 2)}

    g, d = jax.device_put((params("G"), params("D")), dev)
    tx = optax.adam(LR, *BETAS)
    g_opt, d_opt = tx.init(g), tx.init(d)
    data = jax.device_put(x, dev)

    @jax.jit
    def critic_step(d, d_opt, g, idx, z, alpha):
        real = data[idx]
        fake = G.apply({"params": g}, z)

        def loss(d):
            grad = jax.grad(lambda x: D.apply({"params": d}, x).sum())(alpha * real + (1 - alpha) * fake)
            gp = jnp.mean((jnp.linalg.norm(grad, axis=1) - 1) ** 2)
            return D.apply({"params": d}, fake).mean() - D.apply({"params": d}, real).mean() + LAM * gp

        d_loss, grads = jax.value_and_grad(loss)(d)
        updates, d_opt = tx.update(grads, d_opt)
        return optax.apply_updates(d, updates), d_opt, d_loss

    @jax.jit
    def generator_step(g, g_opt, d, z):
        g_loss, grads = jax.value_and_grad(lambda g: -D.apply({"params": d}, G.apply({"params": g}, z)).mean())(g)
        updates, g_opt = tx.update(grads, g_opt)
        return optax.apply_updates(g, updates), g_opt, g_loss

    def run_block(b):
        nonlocal g, d, g_opt, d_opt
        for k in range(b["idx"].shape[0]):
            for c in range(N_CRITIC):
                d, d_opt, _ = critic_step(d, d_opt, g, b["idx"][k, c], b["z_d"][k, c], b["alpha"][k, c])
            g, g_opt, g_loss = generator_step(g, g_opt, d, b["z_g"][k])
        g_loss.block_until_ready()  # wait for the device, as the harness does once per block

    time_blocks(args, stream, run_block)


if __name__ == "__main__":
    main()
