"""What the hand-written loops share: arguments, inputs and the JSON they print."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np

from bench.core import data
from bench.core.nets import ARCHS, init_weights
from bench.core.spec import WGAN_GP
from bench.core.stream import InputStream


def setup(argv: list[str] | None = None):
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    arch = ARCHS["mlp"]
    x = data.load("mnist").x
    stream = InputStream(0, WGAN_GP, args.batch_size, arch.z_dim, 1, len(x))
    return args, init_weights(arch, 0), x, stream


def time_blocks(args, stream: InputStream, run_block: Callable[[dict], None]) -> None:
    """Same clock discipline as the harness: inputs made first, one timing per block."""
    per_step = []
    for blk in stream.blocks(0, args.steps, args.block):
        arrays = blk.arrays()
        t0 = time.perf_counter()
        run_block(arrays)
        if blk.start >= args.warmup:
            per_step.append(1000 * (time.perf_counter() - t0) / blk.steps)
    print(json.dumps({"step_ms_median": statistics.median(per_step), "step_ms_min": min(per_step)}))


LAM, N_CRITIC = WGAN_GP.gp_lambda, WGAN_GP.n_critic
LR, BETAS = WGAN_GP.d_opt.lr, (WGAN_GP.d_opt.beta1, WGAN_GP.d_opt.beta2)
__all__ = ["setup", "time_blocks", "LAM", "N_CRITIC", "LR", "BETAS", "np"]
