"""Every source setup as a named preset: algorithm, architecture, data set and every
hyperparameter as its source wrote them, with each deviation written next to it.

Training length is not a preset value: sources train for days, so a run takes the
architecture's benchmark length unless --steps says otherwise; `source_steps` records
the source's own count (for `--steps` when you want the whole thing).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bench.core.nets import Init
from bench.core.spec import GAN, WGAN, WGAN_GP, Algo, Optimizer


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    algo: Algo
    arch: str
    dataset: str
    batch_size: int
    source_steps: int  # generator iterations the source trained for
    init: Init | None = None  # None: the architecture's own scheme
    notes: tuple[str, ...] = ()  # where the preset is not the source, and why


_r = dataclasses.replace
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "seed000-wgan-gp-svhn", "seeds/000 (Iqbal's WGAN-GP-PyTorch on SVHN)",
            WGAN_GP, "dcgan32", "svhn", 64, 200_000,
            notes=("z 128, dim 64, n_critic 5, lambda 10, Adam 1e-4 (0.5, 0.9): the post uses gan_mnist.py's "
                   "hyperparameters, and so its 200,000 iterations",),
        ),
        Preset(
            "seed001-gan-mlp-mnist", "seeds/001 (wiseodd, GAN in PyTorch)",
            _r(GAN, d_opt=Optimizer("adam", 1e-3), g_opt=Optimizer("adam", 1e-3)), "mlp", "mnist", 64, 100_000,
            init="he_normal",
            notes=("the post's xavier_init draws N(0, 2/fan_in) weights and zero biases: init he_normal",
                   "its loss is BCE on D's sigmoid output; here BCE on logits (the same value, stable)"),
        ),
        Preset(
            "seed002-wgan-mlp-mnist", "seeds/002 (wiseodd, WGAN in TensorFlow and PyTorch)",
            _r(WGAN, n_critic=5, clip=0.01), "mlp", "mnist", 64, 1_000_000,
            notes=("RMSprop 5e-5 both nets, clip 0.01 after each critic update, 5 critic updates: as written",
                   "batch size and z size are not in the post: seed 001's (same author, same nets) 64 and 100",
                   "its TF code uses tf.train.RMSPropOptimizer (decay 0.9, eps 1e-10); here its PyTorch "
                   "version's torch.optim.RMSprop (alpha 0.99, eps 1e-8)"),
        ),
        Preset(
            "seed003-wgan-dcgan-celeba", "seeds/003 (shekkizh, WassersteinGAN.tensorflow on CelebA)",
            WGAN, "dcgan64", "celeba", 64, 100_000,
            notes=("RMSprop 5e-5, 1e5 iterations, no biases anywhere: as written",
                   "clip, critic updates and batch size are not in the README: the paper's 0.01, 5 and 64"),
        ),
        Preset(
            "seed004-wgan-dcgan-mnist", "seeds/004 (GANs 3/n: WGAN with weight clipping on MNIST)",
            _r(WGAN, n_critic=2, clip=0.04, clip_before_update=True,
               d_opt=Optimizer("adam", 4e-4, 0.5, 0.999), g_opt=Optimizer("adam", 4e-4, 0.5, 0.999)),
            "dcgan28_small", "mnist", 64, 50 * 60_000 // 64,
            notes=("clip 0.04 before each critic update, Adam 4e-4 (0.5, 0.999), 2 critic updates per "
                   "generator update, the critic's final sigmoid: as written",
                   "batch size is not in the post: 64; source_steps is its 50 epochs at that batch"),
        ),
        Preset(
            "paper-wgan-gp-toy", "gan_toy.py (Gulrajani et al., WGAN-GP)",
            _r(WGAN_GP, gp_lambda=0.1), "toy_mlp", "8gaussians", 256, 100_000,
            notes=("lambda 0.1 (gan_toy.py's, not the paper's 10), Adam 1e-4 (0.5, 0.9), 5 critic updates",),
        ),
        Preset(
            "paper-wgan-gp-mnist", "gan_mnist.py (Gulrajani et al., WGAN-GP)",
            WGAN_GP, "dcgan28", "mnist", 50, 200_000,
            notes=("TF 'SAME' stride-2 convolutions pad asymmetrically; here symmetric pad 2 (PyTorch's "
                   "usual port)",),
        ),
        Preset(
            "paper-wgan", "Arjovsky et al., WGAN main.py (DCGAN 64x64)",
            _r(WGAN, n_critic_warm=100, warm_steps=25, warm_every=500), "dcgan64", "celeba", 64, 100_000,
            notes=("RMSprop 5e-5, clamp 0.01, 5 critic updates, 100 for the first 25 generator iterations "
                   "and every 500th, N(0, 0.02) init: as main.py",
                   "the paper trains on LSUN bedrooms; CelebA is the 64x64 set this benchmark reads"),
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


def describe() -> str:
    """The --list-presets text."""
    lines = []
    for p in PRESETS.values():
        a = p.algo
        opt = a.d_opt
        hp = (f"{a.name}: {opt.name} lr {opt.lr:g}"
              + (f" betas ({opt.beta1}, {opt.beta2})" if opt.name == "adam" else "")
              + f", n_critic {a.n_critic}" + (f" (warm {a.n_critic_warm})" if a.n_critic_warm else "")
              + (f", clip {a.clip:g}{' before update' if a.clip_before_update else ''}" if a.clip else "")
              + (f", lambda {a.gp_lambda:g}" if a.gp_lambda else ""))
        lines += [f"{p.name}", f"  source: {p.source}",
                  f"  {p.arch} on {p.dataset}, batch {p.batch_size}, {hp}"
                  + (f", init {p.init}" if p.init else "") + f"; the source trained {p.source_steps:,} steps"]
        lines += [f"  note: {n}" for n in p.notes]
    return "\n".join(lines)
