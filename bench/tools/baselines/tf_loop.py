"""MLP WGAN-GP as a person writes it in TensorFlow 2 (seed 002's TF, in TF2 idiom): Keras
layers, a tf.function per critic and generator step, Keras Adam; timed like the harness."""

import tensorflow as tf

from bench.tools.baselines.common import BETAS, LAM, LR, N_CRITIC, setup, time_blocks


def main() -> None:
    args, w, x, stream = setup()
    if args.device != "gpu":
        tf.config.set_visible_devices([], "GPU")
    dense = tf.keras.layers.Dense
    G = tf.keras.Sequential([tf.keras.Input((100,)), dense(128, "relu"), dense(784, "sigmoid")])
    D = tf.keras.Sequential([tf.keras.Input((784,)), dense(128, "relu"), dense(1)])
    for net, model in (("G", G), ("D", D)):
        for layer, i in zip(model.layers, (0, 2), strict=True):
            layer.set_weights([w[f"{net}.{i}.w"], w[f"{net}.{i}.b"]])
    opt_g = tf.keras.optimizers.Adam(LR, *BETAS)
    opt_d = tf.keras.optimizers.Adam(LR, *BETAS)
    data = tf.constant(x)

    @tf.function
    def critic_step(real, z, alpha):
        fake = G(z)
        with tf.GradientTape() as tape:
            x_hat = alpha * real + (1 - alpha) * fake
            with tf.GradientTape() as inner:
                inner.watch(x_hat)
                score = tf.reduce_sum(D(x_hat))
            grad = inner.gradient(score, x_hat)
            gp = tf.reduce_mean((tf.norm(grad, axis=1) - 1) ** 2)
            d_loss = tf.reduce_mean(D(fake)) - tf.reduce_mean(D(real)) + LAM * gp
        opt_d.apply_gradients(zip(tape.gradient(d_loss, D.trainable_variables), D.trainable_variables, strict=True))
        return d_loss

    @tf.function
    def generator_step(z):
        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(D(G(z)))
        opt_g.apply_gradients(zip(tape.gradient(g_loss, G.trainable_variables), G.trainable_variables, strict=True))
        return g_loss

    def run_block(b):
        for k in range(b["idx"].shape[0]):
            for c in range(N_CRITIC):
                critic_step(tf.gather(data, b["idx"][k, c]), b["z_d"][k, c], b["alpha"][k, c])
            g_loss = generator_step(b["z_g"][k])
        g_loss.numpy()  # wait for the device, as the harness does once per block

    time_blocks(args, stream, run_block)


if __name__ == "__main__":
    main()
