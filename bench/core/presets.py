"""Every source setup as a named preset: algorithm, architecture, data set and every
hyperparameter as its source wrote them, with each deviation written next to it.

Training length is not a preset value: sources train for days, so a run takes the
architecture's benchmark length unless --steps says otherwise; `source_steps` records
the source's own count of generator iterations (for `--steps` when you want the whole
thing). The notes list only what still differs from the source's code, each with why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from bench.core.data import CELEBA_MAX, POOL
from bench.core.nets import ARCHS, Init
from bench.core.spec import GAN, WGAN, WGAN_GP, Algo, Optimizer


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    algo: Algo
    arch: str
    dataset: str
    batch_size: int
    source_steps: int  # generator iterations the source's own code runs
    init: Init | None = None  # None: the architecture's own scheme
    z_dist: Literal["normal", "uniform"] = "normal"
    batches: Literal["independent", "epochs"] = "epochs"  # every source but gan_toy walks epochs
    sample_running_stats: bool = False
    notes: tuple[str, ...] = ()  # where the preset is not the source, and why

    def spec_fields(self, same_arch: bool) -> dict:
        """RunSpec fields the preset sets; the init and the batch-norm sampling mode only on its own arch."""
        own = {"init": self.init, "sample_running_stats": self.sample_running_stats} if same_arch else {}
        return {"z_dist": self.z_dist, "batches": self.batches, "preset": self.name, **own}


MNIST_55K = ("TF's read_data_sets trains on 55,000 images (5,000 held out) and its next_batch carries the "
             "rest of an epoch into the next batch; here the 60,000 of MNIST's IDX files (or the 5,000 "
             "embedded ones) in epochs of full batches")
_r = dataclasses.replace
# tf.train.RMSPropOptimizer's defaults (decay 0.9, momentum 0, epsilon 1e-10), as seeds 002 and 003 call it
TF1_RMSPROP = Optimizer("rmsprop_tf1", 5e-5, alpha=0.9, eps=1e-10)
# tf.train.AdamOptimizer(1e-4, beta1=0.5, beta2=0.9) of gan_toy.py and gan_mnist.py (epsilon 1e-8)
TF1_ADAM_GP = Optimizer("adam_tf1", 1e-4, 0.5, 0.9, eps=1e-8)
CELEBA_CAP = (f"CelebA capped at its first {CELEBA_MAX:,} images (sorted names): the whole data set sits on "
              "the device as float32; the source reads all 202,599")
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "seed000-wgan-gp-svhn", "seeds/000 (shariqiqbal2810/WGAN-GP-PyTorch train_SVHN.py on SVHN)",
            _r(WGAN_GP, generator_first=True), "dcgan32", "svhn", 64, 160_160 // 5,
            init="uniform_fan_in",
            notes=("its utils.py transposes every image (H and W swapped); here the images stay upright, "
                   "the same task seen the right way up",
                   "its loop ends with one critic update after the last generator update; not run (it "
                   "changes no generator)"),
        ),
        Preset(
            "seed001-gan-mlp-mnist", "seeds/001 (wiseodd, GAN in PyTorch)",
            _r(GAN, d_opt=Optimizer("adam", 1e-3), g_opt=Optimizer("adam", 1e-3)), "mlp", "mnist", 64, 100_000,
            init="he_normal",
            notes=(MNIST_55K,
                   "its loss is BCE on D's sigmoid output; here BCE on logits (the same value, stable)"),
        ),
        Preset(
            "seed002-wgan-mlp-mnist", "seeds/002 (wiseodd generative-models GAN/wasserstein_gan/wgan_pytorch.py)",
            _r(WGAN, d_opt=Optimizer("rmsprop", 1e-4), g_opt=Optimizer("rmsprop", 1e-4)), "mlp_z10", "mnist", 32,
            1_000_000, init="torch",
            notes=(MNIST_55K,
                   "its generator step also draws a real batch it never uses; here the generator step takes "
                   "none, so the epochs' batches go to critic updates only"),
        ),
        Preset(
            "seed002-wgan-mlp-mnist-tf", "seeds/002 (wiseodd generative-models GAN/wasserstein_gan/wgan_tensorflow.py)",
            _r(WGAN, d_opt=_r(TF1_RMSPROP, lr=1e-4), g_opt=_r(TF1_RMSPROP, lr=1e-4)), "mlp_z10", "mnist", 32,
            1_000_000, init="he_normal", z_dist="uniform",
            notes=(MNIST_55K,
                   "its clip runs in the same sess.run as the critic update, in no set order; here after it "
                   "(as its PyTorch twin)"),
        ),
        Preset(
            "seed003-wgan-dcgan-celeba", "seeds/003 (shekkizh/WassersteinGAN.tensorflow on CelebA)",
            _r(WGAN, d_opt=TF1_RMSPROP, g_opt=TF1_RMSPROP, n_critic_warm=25, warm_steps=25, warm_every=500,
               count_from=1),
            "dcgan64_tf", "celeba", 64, 100_000, z_dist="uniform", sample_running_stats=True,
            notes=(CELEBA_CAP,
                   "its 108x108 crop is resized by TF1's resize_bilinear; here PIL's bilinear",
                   "its critic minimises D(real) - D(fake); here D(fake) - D(real): the same game with the "
                   "score's sign (the last layer's weights) flipped",
                   "its batches come from 4 reader threads (tf.train.batch) in no set order; here seeded "
                   "epochs"),
        ),
        Preset(
            "seed004-wgan-dcgan-mnist", "seeds/004 (GANs 3/n: WGAN with weight clipping on MNIST)",
            _r(WGAN, n_critic=2, clip=0.04, clip_before_update=True,
               d_opt=Optimizer("adam", 4e-4, 0.5, 0.999), g_opt=Optimizer("adam", 4e-4, 0.5, 0.999)),
            "dcgan28_small", "mnist", 64, 50 * (60_000 // 64) // 2, init="torch",
            notes=("batch size, z distribution and the data loop are not in the post: batch 64, z ~ N(0, 1), "
                   "shuffled epochs of full batches, one batch per critic update and none for the generator; "
                   "so its 50 epochs are 23,425 generator iterations; PyTorch >= 1.0's default init assumed "
                   "(the post uses .to(device), on Colab)"),
        ),
        Preset(
            "paper-wgan-gp-toy", "gan_toy.py (Gulrajani et al., WGAN-GP)",
            _r(WGAN_GP, gp_lambda=0.1, d_opt=TF1_ADAM_GP, g_opt=TF1_ADAM_GP), "toy_mlp", "8gaussians", 256,
            100_000 - 1, init="he_glorot_out", batches="independent",
            notes=("it draws a fresh batch of 8gaussians points for every critic update; here batches "
                   f"drawn with replacement from a fixed pool of {POOL:,} points (the data crosses to a "
                   "backend once, as an array)",
                   "its loop skips the generator at iteration 0 and ends on 5 critic updates; here its 99,999 "
                   "generator iterations, each 5 critic updates then the generator's"),
        ),
        Preset(
            "paper-wgan-gp-mnist", "gan_mnist.py (Gulrajani et al., WGAN-GP)",
            _r(WGAN_GP, d_opt=TF1_ADAM_GP, g_opt=TF1_ADAM_GP), "dcgan28", "mnist", 50, 200_000 - 1, init="tflib",
            notes=("its 'SAME' stride-2 convolutions pad (1, 2) for 28->14 and 14->7, and its deconvolutions "
                   "are their adjoints; here symmetric pad 2, which shifts the first two layers' windows by one "
                   "pixel: the layer list has symmetric padding only",
                   "tflib's mnist.pkl.gz trains on 50,000 images (1,000 batches an epoch); here the 60,000 "
                   "of MNIST's IDX files (or the 5,000 embedded ones)",
                   "its loop skips the generator at iteration 0 and ends on 5 critic updates; here its 199,999 "
                   "generator iterations, each 5 critic updates then the generator's"),
        ),
        Preset(
            "paper-wgan", "Arjovsky et al., WGAN main.py (DCGAN 64x64)",
            _r(WGAN, n_critic_warm=100, warm_steps=25, warm_every=500, clip_before_update=True),
            "dcgan64", "celeba", 64, 227_862, init="dcgan",
            notes=("the paper trains on LSUN bedrooms, which this benchmark does not read: CelebA, with its "
                   "108x108 center crop resized to 64 (main.py scales a folder's images to 64, then "
                   "center-crops 64); source_steps is main.py's 25 epochs of LSUN's 3,033,042 images",
                   CELEBA_CAP,
                   "at an epoch's end main.py cuts the critic round short and keeps a partial last batch; here "
                   "every round is whole and every batch full",
                   "its critic minimises D(real) - D(fake); here D(fake) - D(real): the same game with the "
                   "score's sign (the last layer's weights) flipped"),
        ),
    )
}


class UnknownPreset(KeyError):
    def __str__(self) -> str:
        return f"unknown preset {self.args[0]!r}; choose from {', '.join(PRESETS)} (--list-presets)"


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise UnknownPreset(name)
    return PRESETS[name]


def _opt(o: Optimizer) -> str:
    betas = f" betas ({o.beta1}, {o.beta2})" if o.is_adam else f" alpha {o.alpha}"
    return f"{o.name} lr {o.lr:g}{betas} eps {o.eps:g}"


def _schedule(a: Algo) -> str:
    s = f"n_critic {a.n_critic}"
    if a.n_critic_warm:
        s += (f" ({a.n_critic_warm} for iterations counted from {a.count_from} below {a.warm_steps}"
              f" or multiples of {a.warm_every})")
    return s + (", generator first" if a.generator_first else "")


def describe() -> str:
    """The --list-presets text."""
    lines = []
    for p in PRESETS.values():
        a = p.algo
        opts = _opt(a.d_opt) if a.d_opt == a.g_opt else f"D {_opt(a.d_opt)}, G {_opt(a.g_opt)}"
        hp = (f"{a.name}: {opts}, {_schedule(a)}"
              + (f", clip {a.clip:g} {'before' if a.clip_before_update else 'after'} each critic update"
                 if a.clip else "")
              + (f", lambda {a.gp_lambda:g}" if a.gp_lambda else ""))
        lines += [f"{p.name}", f"  source: {p.source}",
                  f"  {p.arch} on {p.dataset}, batch {p.batch_size} ({p.batches}), z ~ "
                  f"{'U(-1, 1)' if p.z_dist == 'uniform' else 'N(0, 1)'}, init {p.init or ARCHS[p.arch].init}"
                  + (", samples with batch-norm running statistics" if p.sample_running_stats else ""),
                  f"  {hp}", f"  the source runs {p.source_steps:,} generator iterations"]
        lines += [f"  differs: {n}" for n in p.notes]
    return "\n".join(lines)
