"""PyTorch backend: nn.Modules and torch.optim, eager or torch.compile'd; or torch.func, one graph.

Modes (backends.REGISTRY's `explain` says the same in a line each for --help; each row's note
says what ran):
- eager: nn.Modules and torch.optim, nothing compiled.
- compile: the idiomatic torch.compile: the modules' forward and backward and the optimizer
  steps compiled; the gradient-penalty critic backward stays eager (aot_autograd has no double
  backward, pytorch/pytorch#92348).
- func: the whole generator iteration (n_critic critic updates with the penalty, then the
  generator update) as one fullgraph torch.compile graph, written with torch.func (grad over
  functional_call) and the spec's update rules (bench.core.optim) as in-place updates; on a GPU
  a block of K iterations is captured once as a CUDA graph and replayed, on a CPU inductor's
  C++ wrapper launches the kernels.

torch.optim.Adam and RMSprop already use the spec's PyTorch forms (bench.core.optim), so eager
and compile configure them from the spec rather than rewriting them, with the fastest
implementation that keeps parity chosen per device (_OPTIMIZER_IMPL); TF1's forms, which
torch.optim lacks, run bench.core.optim.update through a small torch.optim.Optimizer
(_SpecOptimizer). Torch keeps its own layouts (NCHW, Linear
(out, in), Conv (out, in, kh, kw), ConvTranspose (in, out, kh, kw)); load/export permute
to and from the canonical ones of bench.core.nets.

spec.devices = N > 1 trains data parallel with DistributedDataParallel (gloo on the CPU,
NCCL on GPUs, rank r on cuda:r). The backend object the worker holds is rank 0: it spawns
ranks 1..N-1, each building the same backend, and forwards them the calls that run
collectives (load, train, matmul_gflops) over pipes. Rank r trains on rows [r*B/N,
(r+1)*B/N) of every global batch; batch norm uses the global batch's statistics. Weights
stay equal on every rank, so sample, critic, evaluate and export run on rank 0 alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.parallel import DistributedDataParallel as DDP

from backends import common
from backends.common import check_mode, die_with, probe_operand
from bench.core import gan, optim
from bench.core.nets import Act, Arch, BatchNorm, Conv, ConvT, Crop, Dense, Flatten, Layer, Reshape
from bench.core.spec import Algo, Optimizer, RunSpec
from bench.core.stream import replica_rows

# Collectives wait at most this long for a slower rank (one rank may still be compiling).
_COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=10)
# torch.optim implementation per (mode, optimizer), the same on CPU and CUDA, where both forms
# exist; torch's own CPU default is the per-parameter loop. Fused Adam is one kernel per
# parameter; RMSprop has no fused form, and its foreach form is bit-identical to the loop.
# compile traces the foreach form, which inductor fuses into its own kernels.
_OPTIMIZER_IMPL = {("eager", "adam"): "fused", ("eager", "rmsprop"): "foreach",
                  ("compile", "adam"): "foreach", ("compile", "rmsprop"): "foreach"}


def _impl(mode: str, o: Optimizer) -> str:
    """Which optimizer code runs: torch.optim's fused or foreach for PyTorch's forms, the spec's
    rule (_SpecOptimizer) for the forms torch.optim lacks."""
    if o.name not in ("adam", "rmsprop"):
        return "bench.core.optim"
    return _OPTIMIZER_IMPL.get((mode, o.name), "foreach")


# CUDA graphs: warm-up runs before capture (the allocator and lazy initialisation settle).
_CUDA_GRAPH_WARMUPS = 2


class Ops:
    mean = staticmethod(torch.mean)
    softplus = staticmethod(F.softplus)
    sigmoid = staticmethod(torch.sigmoid)
    sqrt = staticmethod(torch.sqrt)

    @staticmethod
    def sum_sq_rows(x: torch.Tensor) -> torch.Tensor:
        return x.square().flatten(1).sum(1)


class _Flatten(nn.Module):
    """Flatten in the canonical NHWC order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x


class _Reshape(nn.Module):
    """Reshape a vector read in NHWC order into an NCHW feature map."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), *self.shape).permute(0, 3, 1, 2)


class _Crop(nn.Module):
    def __init__(self, h: int, w: int) -> None:
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : self.h, : self.w]


class _BatchNorm(nn.BatchNorm2d):
    """Batch norm written out, for what nn.BatchNorm2d does not do: the global batch of all ranks
    while `synced` (training passes), and a running variance of the biased batch variance
    (BatchNorm.unbiased False). Otherwise plain nn.BatchNorm2d.

    nn.SyncBatchNorm refuses CPU tensors, so this is the small two-pass version: the mean and
    then the biased variance from local sums added over ranks by a differentiable all-reduce
    (its backward all-reduces the gradients, so every rank's loss reaches every rank's inputs).
    Running statistics follow nn.BatchNorm2d: momentum weighs the batch.
    """

    def __init__(self, c: int, eps: float, momentum: float, world: int, unbiased: bool = True) -> None:
        super().__init__(c, eps=eps, momentum=momentum)
        self.world, self.synced, self.unbiased = world, False, unbiased

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or (self.unbiased and not self.synced):
            return super().forward(x)
        dims, shape = [0, *range(2, x.dim())], (1, -1) + (1,) * (x.dim() - 2)
        world = self.world if self.synced else 1
        n = x.numel() // x.shape[1] * world  # ranks hold equal shares

        def total(t: torch.Tensor) -> torch.Tensor:
            return _sum_over_ranks(t) if self.synced else t

        mean = total(x.sum(dims)) / n
        xc = x - mean.reshape(shape)
        var = total(xc.square().sum(dims)) / n
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean, alpha=m)
            self.running_var.mul_(1 - m).add_(var * (n / (n - 1)) if self.unbiased else var, alpha=m)
            self.num_batches_tracked.add_(1)
        return xc * (torch.rsqrt(var + self.eps) * self.weight).reshape(shape) + self.bias.reshape(shape)


def _sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    # the functional collective: differentiable and traceable by torch.compile, unlike
    # torch.distributed.nn.functional.all_reduce (deprecated, refused under compile)
    return funcol.wait_tensor(funcol.all_reduce(t, "sum", dist.group.WORLD))


class _CriticPasses(nn.Module):
    """Every critic pass of one critic update in one forward (D(real), D(fake) and the penalty's
    D(x_hat) with its input gradient): DDP expects one forward per backward."""

    def __init__(self, D: nn.Module, algo: Algo) -> None:
        super().__init__()
        self.D, self.algo = D, algo

    def forward(self, x_real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        m = gan.critic_loss(self.algo, Ops, self.D(x_real), self.D(fake))
        if self.algo.gp_lambda:
            x_hat = gan.interpolate(alpha, x_real, fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(x_hat).sum(), x_hat, create_graph=True)
            m["gp"] = gan.gradient_penalty(Ops, grad)
            m["d_loss"] = m["d_loss"] + self.algo.gp_lambda * m["gp"]
        return m


def _layer(layer: Layer, world: int = 1) -> nn.Module:
    if isinstance(layer, Dense):
        return nn.Linear(layer.n_in, layer.n_out, bias=layer.bias)
    if isinstance(layer, Conv):
        return nn.Conv2d(layer.c_in, layer.c_out, layer.k, layer.stride, layer.pad, bias=layer.bias)
    if isinstance(layer, ConvT):
        return nn.ConvTranspose2d(layer.c_in, layer.c_out, layer.k, layer.stride, layer.pad, layer.out_pad,
                                  bias=layer.bias)
    if isinstance(layer, BatchNorm):  # torch's momentum already means the new batch's weight
        if world > 1 or not layer.unbiased:
            return _BatchNorm(layer.c, layer.eps, layer.momentum, world, layer.unbiased)
        return nn.BatchNorm2d(layer.c, eps=layer.eps, momentum=layer.momentum)
    if isinstance(layer, Reshape):
        return _Reshape(layer.shape)
    if isinstance(layer, Flatten):
        return _Flatten()
    if isinstance(layer, Crop):
        return _Crop(layer.h, layer.w)
    assert isinstance(layer, Act)
    if layer.kind == "leaky_relu":
        return nn.LeakyReLU(layer.slope)
    return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[layer.kind]()


# canonical -> torch axis order of each layer's weight
_PERM = {Dense: (1, 0), Conv: (3, 2, 0, 1), ConvT: (2, 3, 0, 1)}
_TORCH_NAME = {"w": "weight", "b": "bias", "mean": "running_mean", "var": "running_var"}


def _tensors(net: str, layers: tuple[Layer, ...], seq: nn.Sequential) -> dict[str, tuple[torch.Tensor, tuple]]:
    """Canonical name -> (parameter or buffer, axis permutation from canonical)."""
    out = {}
    for i, (layer, m) in enumerate(zip(layers, seq, strict=True)):
        for short, attr in _TORCH_NAME.items():
            t = getattr(m, attr, None)
            if isinstance(t, torch.Tensor):
                out[f"{net}.{i}.{short}"] = (t, _PERM.get(type(layer), (0,)) if short == "w" else (0,))
    return out


class _SpecOptimizer(torch.optim.Optimizer):
    """bench.core.optim.update for the forms torch.optim has no version of (TF1's). State per
    parameter: "step" and the spec's slot names, each slot from its slot_start."""

    def __init__(self, params: list[nn.Parameter], o: Optimizer) -> None:
        super().__init__(params, {})
        self.o = o

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st.update(step=torch.tensor(0.0), **{s: torch.full_like(p, self.o.slot_start(s))
                                                         for s in self.o.slots()})
                st["step"] += 1
                bc = optim.bias_corrections(self.o, int(st["step"])) if self.o.is_adam else None
                new, slots = optim.update(self.o, p, p.grad, {s: st[s] for s in self.o.slots()}, bc, torch.sqrt)
                p.copy_(new)
                for s, v in slots.items():
                    st[s].copy_(v)


def _optimizer(o: Optimizer, params: list[nn.Parameter], impl: str = "foreach") -> torch.optim.Optimizer:
    """The one place an optimizer form becomes a torch optimizer. impl, for PyTorch's forms:
    "fused" or "foreach", always explicit (torch's default depends on the device)."""
    kw = {"fused": True} if impl == "fused" else {"foreach": True}
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, **kw)
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr, alpha=o.alpha, eps=o.eps, **kw)
    return _SpecOptimizer(params, o)


def _slot_keys(o: Optimizer) -> dict[str, str]:
    """The spec's slot names -> the optimizer's state keys."""
    if o.name == "adam":
        return {"m": "exp_avg", "v": "exp_avg_sq"}
    return {"v": "square_avg"} if o.name == "rmsprop" else {s: s for s in o.slots()}


def apply_optimizer(o: Optimizer, p0: np.ndarray, grads: list[np.ndarray], impl: str | None = None
                    ) -> list[np.ndarray]:
    """This backend's optimizer on one parameter, one update per gradient (tests vs bench.core.optim).
    impl: "fused", "foreach" (torch.optim) or "func" (func mode's update); default eager's on the CPU."""
    impl = impl or _impl("eager", o)
    p = nn.Parameter(torch.from_numpy(p0.astype(np.float32)))
    opt = _optimizer(o, [p], impl) if impl != "func" else None
    slots, out = {s: [torch.full_like(p, o.slot_start(s))] for s in o.slots()}, []
    for t, g in enumerate(grads, start=1):
        grad = torch.from_numpy(g.astype(np.float32))
        if opt is None:
            with torch.no_grad():
                _func_update(o, [p], [grad], slots, _bias_corrections(o, [t], torch.float32)[0])
        else:
            p.grad = grad
            opt.step()
        out.append(p.detach().numpy().copy())
    return out


# -- func mode: the update rules and passes as functions of explicit tensors -----------------
def _bias_corrections(o: Optimizer, steps: list[int], dtype: torch.dtype) -> torch.Tensor:
    """(len(steps), 2): Adam's 1 - beta^t per 1-based step t, formed in float64 on the host as torch.optim
    does and rounded once to the run's dtype; they enter the compiled graph as inputs, so a new t
    neither retraces nor waits for the device. RMSprop has none: zeros of the same shape."""
    bc = [optim.bias_corrections(o, t) if o.is_adam else (0.0, 0.0) for t in steps]
    return torch.tensor(bc, dtype=torch.float64).to(dtype)


def _func_update(o: Optimizer, params: list[torch.Tensor], grads: list[torch.Tensor],
                 slots: dict[str, list[torch.Tensor]], bc: torch.Tensor) -> None:
    """One step of bench.core.optim's rule (any form) on params and their slots, in place."""
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        new, out = optim.update(o, p, g, {s: v[i] for s, v in slots.items()}, (bc[0], bc[1]), torch.sqrt)
        for s, v in out.items():
            slots[s][i].copy_(v)
        p.copy_(new)


def _stack(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([r[key] for r in rows]) for key in rows[0]}


@dataclasses.dataclass(frozen=True)
class _FuncNet:
    """One net's tensors in func mode, by the module's own names (functional_call's keys)."""

    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    slots: dict[str, list[torch.Tensor]]  # canonical slot -> one tensor per parameter, in params' order
    steps: list[torch.Tensor]  # torch.optim's step counts, kept for export

    def clip(self, c: float) -> None:
        for p in self.params.values():
            p.clamp_(-c, c)


class _CudaGraphBlock:
    """A block of K func iterations captured once as a CUDA graph, then replayed per block: inputs
    are copied into static buffers, metrics read from static outputs. The warm-ups (on a side
    stream, as capture requires) train, so the state they update is saved before and restored."""

    def __init__(self, iteration: Callable, state: list[torch.Tensor], inputs: tuple[torch.Tensor, ...]) -> None:
        self.iteration, self.inputs = iteration, tuple(x.clone() for x in inputs)
        saved = [t.clone() for t in state]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(_CUDA_GRAPH_WARMUPS):
                self._block()
        torch.cuda.current_stream().wait_stream(side)
        for t, v in zip(state, saved, strict=True):
            t.copy_(v)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = self._block()

    def _block(self) -> dict[str, torch.Tensor]:
        return _stack([self.iteration(*(x[k] for x in self.inputs)) for k in range(len(self.inputs[0]))])

    def __call__(self, inputs: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        for static, x in zip(self.inputs, inputs, strict=True):
            static.copy_(x)
        self.graph.replay()
        return {k: v.clone() for k, v in self.outputs.items()}


class TorchBackend:
    name = "torch"
    # func on a CPU: inductor's C++ wrapper launches the graph's kernels (__init__ says why).
    # torch.profiler sees no op inside it, so bench.tools.profile_step also builds func without.
    cpp_wrapper_on_cpu = True

    def __init__(self, spec: RunSpec, arch: Arch, mode: str, device: str, *, rank: int = 0,
                 init_method: str | None = None, threads: int | None = None) -> None:
        """rank, init_method and threads are for the follower ranks rank 0 spawns (devices > 1)."""
        check_mode(self.name, mode)
        if device == "gpu" and not torch.cuda.is_available():
            raise RuntimeError("--device gpu: torch sees no CUDA device")
        self.spec, self.arch, self.mode, self.algo = spec, arch, mode, spec.algo
        self.rank, self.world = rank, spec.devices
        self.followers: list[tuple[BaseProcess, Connection]] = []
        self.device = torch.device("cuda" if device == "gpu" else "cpu")
        if self.world > 1:
            self._join_group(device, init_method, threads)
        self.dtype = getattr(torch, spec.float_dtype)
        tf32 = spec.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32  # explicit: cuDNN conv defaults to on
        torch.backends.cudnn.allow_tf32 = tf32
        torch.set_float32_matmul_precision("high" if tf32 else "highest")
        layer = functools.partial(_layer, world=self.world)
        self.G = nn.Sequential(*map(layer, arch.generator)).to(self.device, self.dtype)
        self.D = nn.Sequential(*map(layer, arch.critic)).to(self.device, self.dtype)
        self.tensors = {**_tensors("G", arch.generator, self.G), **_tensors("D", arch.critic, self.D)}
        self.params = {n: t for n, (t, _) in self.tensors.items() if isinstance(t, nn.Parameter)}
        self.impl = {net: _impl(mode, o) for net, o in self._opts().items()}
        # func mode never steps these: they hold its optimizer slots, so load and export are shared
        self.opt = {net: _optimizer(o, list(self._net(net).parameters()), self.impl[net])
                    for net, o in self._opts().items()}
        # The modules whose forward starts a backward: wrapped in DDP on N devices. The other net
        # is always called unwrapped (G under no_grad in the critic step, frozen D in the generator
        # step), since a DDP forward must be followed by a backward reaching all its parameters.
        self.critic_passes: nn.Module = _CriticPasses(self.D, self.algo)
        self.critic_net, self.generator_net = self.critic_passes, self.G
        self.global_bn = [m for m in (*self.G, *self.D) if isinstance(m, _BatchNorm) and self.world > 1]
        notes = []
        if self.world > 1 and mode != "func":
            ids = [self.device.index] if self.device.type == "cuda" else None
            # buffers need no broadcast: synchronised batch norm keeps running statistics equal
            self.critic_net = DDP(self.critic_passes, device_ids=ids, forward_sync_buffers=False)
            self.generator_net = DDP(self.G, device_ids=ids, forward_sync_buffers=False)
            notes.append(f"DDP {dist.get_backend()} x{self.world}")
        elif self.world > 1:
            notes.append(f"{dist.get_backend()} x{self.world}, gradients all-reduced inside the graph")
        if self.global_bn:
            notes[-1] += ", batch norm over the global batch"
        self.critic_step, self.generator_step = self._critic_update, self._generator_update
        self.critic_backward, self.generator_backward = self._critic_backward, self._generator_backward
        self.opt_step = {net: opt.step for net, opt in self.opt.items()}
        optimizers = ", ".join(f"{net} {o.name} {self.impl[net]}" for net, o in self._opts().items())
        if mode == "eager":
            notes.append(f"torch.optim {optimizers}; nothing compiled")
        elif mode == "compile":
            # Compiled code is cached per function, not per instance: start clean so an earlier
            # backend's graphs (another arch, dtype) neither count here nor turn shapes dynamic.
            torch._dynamo.reset()
            compile_ = functools.partial(torch.compile, dynamic=False)
            self.generator_backward = compile_(self._generator_backward)
            # torch.optim's step always breaks the graph around it (pytorch/pytorch#104053): its own graph
            self.opt_step = {net: compile_(opt.step) for net, opt in self.opt.items()}
            compiled = "G forward+backward, both optimizer steps"
            if self.algo.gp_lambda:  # aot_autograd has no double backward (pytorch/pytorch#92348)
                notes.append(f"torch.optim {optimizers}; compiled: {compiled}; eager: the critic's "
                             "forward+backward (the penalty's double backward)")
            else:
                self.critic_backward = compile_(self._critic_backward)
                notes.append(f"torch.optim {optimizers}; compiled: {compiled}, D forward+backward")
        elif mode == "func":
            torch._dynamo.reset()
            # On a CPU, inductor's C++ wrapper launches the graph's kernels from C++ rather than
            # from generated Python: a small step's time there is mostly that per-kernel overhead
            # (a GPU replays a CUDA graph instead). Same kernels, so the same numbers.
            cpp_wrapper = self.cpp_wrapper_on_cpu and self.device.type == "cpu"
            self.iteration = torch.compile(self._func_iteration, fullgraph=True, dynamic=False,
                                           options={"cpp_wrapper": True} if cpp_wrapper else None)
            opts = ", ".join(f"{net} {o.name}" for net, o in self._opts().items())
            notes.append(f"torch.func, hand-written {opts} (bench.core.optim, in place); compiled: each "
                         "generator iteration (critic updates, penalty, generator update) as one graph"
                         + (" with inductor's C++ wrapper" if cpp_wrapper else "") + "; "
                         + ("a CUDA graph replays each block" if self._cuda_graphs() else
                            "eager: the loop over a block's iterations"))
        self.note = "; ".join(notes)
        self.graphs: dict[tuple[int, ...], _CudaGraphBlock] = {}

    def _opts(self) -> dict[str, Optimizer]:
        return {"G": self.algo.g_opt, "D": self.algo.d_opt}

    def _net(self, net: str) -> nn.Sequential:
        return self.G if net == "G" else self.D

    def _cuda_graphs(self) -> bool:
        """func on one GPU: a block's iterations captured as one CUDA graph (not across NCCL ranks)."""
        return self.device.type == "cuda" and self.world == 1

    # -- ranks ---------------------------------------------------------------------------
    def _join_group(self, device: str, init_method: str | None, threads: int | None) -> None:
        """Rank 0 spawns the followers first; then every rank joins the process group."""
        if device == "gpu":
            if torch.cuda.device_count() < self.world:
                raise RuntimeError(f"--devices {self.world}: torch sees {torch.cuda.device_count()} CUDA device(s)")
            self.device = torch.device("cuda", self.rank)
            torch.cuda.set_device(self.device)
        # N ranks share the host's cores rather than each taking all of them
        threads = threads or max(1, torch.get_num_threads() // self.world)
        torch.set_num_threads(threads)
        if self.rank == 0:
            tmp = tempfile.mkdtemp(prefix="ganbench-ddp-")
            init_method = f"file://{tmp}/store"
            ctx = mp.get_context("spawn")
            for r in range(1, self.world):
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=_follow, daemon=True, name=f"torch-rank{r}",
                                   args=(self.spec, self.arch, self.mode, device, r, init_method, threads, theirs,
                                         os.getpid()))
                proc.start()
                theirs.close()
                self.followers.append((proc, ours))
            weakref.finalize(self, _shut_down, list(self.followers), tmp)
        dist.init_process_group("nccl" if device == "gpu" else "gloo", init_method=init_method, rank=self.rank,
                                world_size=self.world, timeout=_COLLECTIVE_TIMEOUT,
                                device_id=self.device if device == "gpu" else None)
        self.threads = f"{threads} per rank x {self.world}"

    def _tell(self, call: str, *args) -> None:
        """Rank 0: have every follower make the same call (they run it alongside, in this order)."""
        for r, (proc, conn) in enumerate(self.followers, 1):
            try:
                conn.send((call, *args))
            except OSError as e:
                raise RuntimeError(f"torch rank {r} is gone (exit code {proc.exitcode})") from e

    @contextlib.contextmanager
    def _global_batch_norm(self):
        """Training passes normalise with the global batch's statistics; sample, critic and
        evaluate run on rank 0 alone with the whole batch, so they keep plain batch norm."""
        for m in self.global_bn:
            m.synced = True
        try:
            yield
        finally:
            for m in self.global_bn:
                m.synced = False

    def info(self) -> dict[str, str]:
        dev = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        if self.world > 1:
            dev += f" x{self.world}" if self.device.type == "cuda" else f" ({self.world} gloo ranks)"
        return {
            "framework_version": torch.__version__,
            "device_name": dev,
            "threads": self.threads if self.world > 1 else str(torch.get_num_threads()),
            "precision": f"matmul_tf32={torch.backends.cuda.matmul.allow_tf32} "
            f"cudnn_tf32={torch.backends.cudnn.allow_tf32} "
            f"deterministic={torch.are_deterministic_algorithms_enabled()} "
            f"cudnn_benchmark={torch.backends.cudnn.benchmark} dtype={self.spec.float_dtype}",
            "note": self.note,
        }

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def matmul_gflops(self, n: int, reps: int) -> float:
        """On N devices every rank multiplies at once and the sum is the peak: the N-device steps
        use all of them (on a CPU, each with its share of the cores)."""
        self._tell("matmul_gflops", n, reps)
        a = torch.from_numpy(probe_operand(n)).to(self.device)
        if self.world > 1:  # every rank starts its clock together
            dist.barrier()
        gflops = common.matmul_gflops(lambda: a @ a, lambda out: self._sync(), n, reps)
        if self.world > 1:
            total = torch.tensor([gflops], dtype=torch.float64, device=self.device)
            dist.all_reduce(total)
            gflops = float(total)
        return gflops

    def peak_memory_mb(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / 2**20 if self.device.type == "cuda" else None

    # -- state ---------------------------------------------------------------------------
    def _to_torch(self, name: str, a: np.ndarray) -> torch.Tensor:
        perm = self.tensors[name.split(":")[0]][1]
        return self._tensor(np.ascontiguousarray(a.transpose(perm)))

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        """Host array onto the device; floats in the run's dtype."""
        t = torch.from_numpy(a).to(self.device)
        return t.to(self.dtype) if t.is_floating_point() else t

    def _to_canonical(self, name: str, t: torch.Tensor) -> np.ndarray:
        perm = self.tensors[name.split(":")[0]][1]
        return t.detach().cpu().numpy().transpose(np.argsort(perm)).copy()

    def load(self, state: dict[str, np.ndarray], data: np.ndarray) -> None:
        if self.followers:  # the data set crosses to the followers in shared memory, not copied per rank
            shared = torch.from_numpy(data[:0]).new_empty(data.shape).share_memory_()
            shared.numpy()[...] = data
            self._tell("load", state, shared)
            data = shared.numpy()
        with torch.no_grad():
            for name, (t, _) in self.tensors.items():
                t.copy_(self._to_torch(name, state[name]))
        for net, opt in self.opt.items():
            t = int(state.get(f"{net}:t", 0))
            # eager starts from torch's own empty state; compile and func hold every slot from the start,
            # with a float64 step count: compiled torch.optim forms 1 - beta^t in the step's dtype
            if t == 0 and self.mode == "eager":
                continue
            fused = self.impl[net] == "fused"  # fused kernels read a float32 step on the parameter's device
            step_dtype = torch.float32 if fused else torch.float64
            for name, p in self.params.items():
                if name.startswith(net + "."):
                    opt.state[p] = {
                        "step": torch.tensor(float(t), dtype=step_dtype, device=p.device if fused else "cpu"),
                        **{key: self._to_torch(name, state[f"{name}:{slot}"]) if f"{name}:{slot}" in state
                           else torch.full_like(p, self._opts()[net].slot_start(slot))
                           for slot, key in _slot_keys(self._opts()[net]).items()}}
        if self.mode == "func":
            self._bind_func_state()
        x = self._tensor(data)
        self.data = (x.permute(0, 3, 1, 2) if x.dim() == 4 else x).contiguous()

    def export(self) -> dict[str, np.ndarray]:
        out = {name: self._to_canonical(name, t) for name, (t, _) in self.tensors.items()}
        for net, opt in self.opt.items():
            o = self._opts()[net]
            t = 0
            for name, p in self.params.items():
                if name.startswith(net + "."):
                    st = opt.state.get(p, {})
                    t = int(st.get("step", 0))
                    for slot, key in _slot_keys(o).items():
                        out[f"{name}:{slot}"] = self._to_canonical(name, st.get(key, torch.full_like(
                            p, o.slot_start(slot))))
            out[f"{net}:t"] = np.array(t, dtype=np.int64)
        return out

    # -- training ------------------------------------------------------------------------
    def _critic_losses(self, critic: nn.Module, x_real, z, alpha) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            fake = self.G(z)
        return critic(x_real, fake, alpha)

    def _clip(self) -> None:
        with torch.no_grad():
            for p in self.D.parameters():
                p.clamp_(-self.algo.clip, self.algo.clip)

    def _critic_backward(self, x_real, z, alpha) -> dict[str, torch.Tensor]:
        m = self._critic_losses(self.critic_net, x_real, z, alpha)
        self.opt["D"].zero_grad(set_to_none=True)
        m["d_loss"].backward()
        return {k: v.detach() for k, v in m.items()}

    def _generator_backward(self, z) -> torch.Tensor:
        loss = gan.generator_loss(self.algo, Ops, self.D(self.generator_net(z)))
        self.opt["G"].zero_grad(set_to_none=True)
        loss.backward()
        return loss.detach()

    def _critic_update(self, x_real, z, alpha) -> dict[str, torch.Tensor]:
        if self.algo.clip and self.algo.clip_before_update:
            self._clip()
        m = self.critic_backward(x_real, z, alpha)
        self.opt_step["D"]()
        if self.algo.clip and not self.algo.clip_before_update:
            self._clip()
        return m

    def _generator_update(self, z) -> torch.Tensor:
        self.D.requires_grad_(False)  # no critic gradients during the generator update
        loss = self.generator_backward(z)
        self.opt_step["G"]()
        self.D.requires_grad_(True)
        return loss

    def _inputs(self, block: dict[str, np.ndarray]):
        return [self._tensor(block[k]) for k in ("idx", "z_d", "alpha", "z_g")]

    def train(self, block: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._tell("train", block)
        idx, z_d, alpha, z_g = self._inputs(block if self.world == 1 else replica_rows(block, self.rank, self.world))
        with self._global_batch_norm():
            if self.mode == "func":
                stacked = self._func_block(idx, z_d, alpha, z_g)
            else:
                rows = []
                for k in range(idx.shape[0]):
                    for c in range(idx.shape[1]):
                        m = self.critic_step(self.data[idx[k, c]], z_d[k, c], alpha[k, c])
                    m["g_loss"] = self.generator_step(z_g[k])
                    rows.append(m)
                stacked = _stack(rows)
        if self.world > 1:  # each rank's metrics are means over equal shares: their mean is the global batch's
            total = torch.stack(list(stacked.values()))
            dist.all_reduce(total)
            stacked = dict(zip(stacked, total / self.world, strict=True))
        return {k: v.cpu().numpy() for k, v in stacked.items()}  # the one sync per block

    # -- func mode: one compiled graph per generator iteration ---------------------------
    def _bind_func_state(self) -> None:
        """The tensors func's graph reads and updates in place: parameters (detached aliases of the
        modules', so sample, critic, evaluate and export see every update), buffers (batch-norm
        running statistics) and the optimizer slots held in torch.optim's state."""
        self.func: dict[str, _FuncNet] = {}
        for net, opt in self.opt.items():
            named = dict(self._net(net).named_parameters())
            keys = _slot_keys(self._opts()[net])
            self.func[net] = _FuncNet(
                params={n: p.detach() for n, p in named.items()},
                buffers=dict(self._net(net).named_buffers()),
                slots={s: [opt.state[p][keys[s]] for p in named.values()] for s in self._opts()[net].slots()},
                steps=[opt.state[p]["step"] for p in named.values()])

    def _func_state(self) -> list[torch.Tensor]:
        """Every tensor the graph updates in place."""
        return [t for f in self.func.values() for t in (*f.params.values(), *f.buffers.values(),
                                                        *(x for xs in f.slots.values() for x in xs))]

    def _func_block(self, idx, z_d, alpha, z_g) -> dict[str, torch.Tensor]:
        """K iterations; Adam's bias corrections for each update made on the host first."""
        steps, n_critic = idx.shape[:2]
        t = {net: int(f.steps[0]) for net, f in self.func.items()}
        bc_d = _bias_corrections(self.algo.d_opt, list(range(t["D"] + 1, t["D"] + steps * n_critic + 1)), self.dtype)
        bc_g = _bias_corrections(self.algo.g_opt, list(range(t["G"] + 1, t["G"] + steps + 1)), self.dtype)
        inputs = (idx, z_d, alpha, z_g, bc_d.reshape(steps, n_critic, 2).to(self.device), bc_g.to(self.device))
        if self._cuda_graphs():
            shape = tuple(idx.shape)
            if shape not in self.graphs:
                self.graphs[shape] = _CudaGraphBlock(self.iteration, self._func_state(), inputs)
            out = self.graphs[shape](inputs)
        else:
            out = _stack([self.iteration(*(x[k] for x in inputs)) for k in range(steps)])
        for net, n in (("D", steps * n_critic), ("G", steps)):
            for step in self.func[net].steps:
                step.fill_(t[net] + n)
        return out

    def _func_iteration(self, idx, z_d, alpha, z_g, bc_d, bc_g) -> dict[str, torch.Tensor]:
        """One generator iteration, the graph torch.compile makes: C critic updates, then G's."""
        for c in range(idx.shape[0]):
            m = self._func_critic_update(self.data[idx[c]], z_d[c], alpha[c], bc_d[c])
        m["g_loss"] = self._func_generator_update(z_g, bc_g)
        return m

    def _func_critic_update(self, x_real, z, alpha, bc) -> dict[str, torch.Tensor]:
        d, g = self.func["D"], self.func["G"]
        if self.algo.clip and self.algo.clip_before_update:
            d.clip(self.algo.clip)
        fake = functional_call(self.G, (g.params, g.buffers), (z,))  # outside the transform: no G gradient
        grads, m = torch.func.grad(self._func_critic_loss, has_aux=True)(d.params, d.buffers, x_real, fake, alpha)
        self._func_apply("D", grads, bc)
        if self.algo.clip and not self.algo.clip_before_update:
            d.clip(self.algo.clip)
        return m

    def _func_critic_loss(self, params, buffers, x_real, fake, alpha):
        """(d_loss, metrics) as a function of D's parameters. The buffers come in as arguments, also
        to the penalty's inner grad: torch.func refuses in-place updates of captured tensors, and
        batch norm updates its running statistics in place."""

        def critic(x, b):
            return functional_call(self.D, (params, b), (x,))

        m = gan.critic_loss(self.algo, Ops, critic(x_real, buffers), critic(fake, buffers))
        if self.algo.gp_lambda:
            x_hat = gan.interpolate(alpha, x_real, fake)
            grad = torch.func.grad(lambda x, b: critic(x, b).sum())(x_hat, buffers)
            m["gp"] = gan.gradient_penalty(Ops, grad)
            m["d_loss"] = m["d_loss"] + self.algo.gp_lambda * m["gp"]
        return m["d_loss"], m

    def _func_generator_update(self, z, bc) -> torch.Tensor:
        g, d = self.func["G"], self.func["D"]

        def loss(params, g_buffers, d_buffers):  # D's parameters are constants here: no critic gradients
            fake = functional_call(self.G, (params, g_buffers), (z,))
            return gan.generator_loss(self.algo, Ops, functional_call(self.D, (d.params, d_buffers), (fake,)))

        grads, value = torch.func.grad_and_value(loss)(g.params, g.buffers, d.buffers)
        self._func_apply("G", grads, bc)
        return value

    def _func_apply(self, net: str, grads: dict[str, torch.Tensor], bc) -> None:
        f = self.func[net]
        gs = [grads[n] for n in f.params]
        if self.world > 1:  # each rank's gradient is of its share's mean: their mean is the global batch's
            gs = [_sum_over_ranks(g) / self.world for g in gs]
        _func_update(self._opts()[net], list(f.params.values()), gs, f.slots, bc)

    @contextlib.contextmanager
    def _stats_kept(self):
        """Forward passes that are not training leave batch-norm running statistics alone."""
        saved = {n: t.clone() for n, (t, _) in self.tensors.items() if n.endswith((".mean", ".var"))}
        try:
            yield
        finally:
            with torch.no_grad():
                for n, t in saved.items():
                    self.tensors[n][0].copy_(t)

    def evaluate(self, block: dict[str, np.ndarray]) -> dict[str, float]:
        idx, z_d, alpha, z_g = self._inputs(block)
        with self._stats_kept():
            m = self._critic_losses(self.critic_passes, self.data[idx[0, 0]], z_d[0, 0], alpha[0, 0])
            with torch.no_grad():
                m["g_loss"] = gan.generator_loss(self.algo, Ops, self.D(self.G(z_g[0])))
        return {k: float(v.detach()) for k, v in m.items()}

    def sample(self, z: np.ndarray) -> np.ndarray:
        self.G.train(not self.spec.sample_running_stats)  # eval(): batch norm reads its running statistics
        try:
            with torch.no_grad(), self._stats_kept():
                x = self.G(self._tensor(z))
        finally:
            self.G.train()
        return (x.permute(0, 2, 3, 1) if x.dim() == 4 else x).cpu().numpy()

    def critic(self, x: np.ndarray) -> np.ndarray:
        t = self._tensor(x)
        with torch.no_grad(), self._stats_kept():
            return self.D(t.permute(0, 3, 1, 2) if t.dim() == 4 else t).cpu().numpy()


def _follow(spec: RunSpec, arch: Arch, mode: str, device: str, rank: int, init_method: str, threads: int,
            conn: Connection, parent: int) -> None:
    """A follower rank: the same backend, making rank 0's calls in its order until told to stop."""
    die_with(parent)  # even when rank 0 is killed mid-collective (the pipe's EOF covers the idle case)
    backend = TorchBackend(spec, arch, mode, device, rank=rank, init_method=init_method, threads=threads)
    try:
        while True:
            try:
                call, *args = conn.recv()
            except EOFError:  # rank 0 is gone
                return
            if call == "stop":
                return
            if call == "load":
                args[1] = args[1].numpy()  # the shared data set
            getattr(backend, call)(*args)
    finally:
        dist.destroy_process_group()


def _shut_down(followers: list[tuple[BaseProcess, Connection]], tmp: str) -> None:
    """Rank 0's finalizer (also at exit): stop the followers, leave the process group."""
    for _, conn in followers:
        with contextlib.suppress(OSError):
            conn.send(("stop",))
    for proc, conn in followers:
        proc.join(timeout=10)
        if proc.is_alive():  # stuck in a collective rank 0 will never join
            proc.kill()
            proc.join()
        conn.close()
    if dist.is_initialized():
        dist.destroy_process_group()
    shutil.rmtree(tmp, ignore_errors=True)


BACKEND = TorchBackend
