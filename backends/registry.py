"""Registry: backend name -> module, imported only when asked for.

Importing this imports no framework; `load("torch")` imports torch alone. What the harness
must know before any import (modes, install hints) lives here as data.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from backends.base import Backend


@dataclass(frozen=True)
class BackendEntry:
    name: str
    module: str
    framework: str  # import name, for availability checks and versions
    modes: tuple[str, ...]
    default_modes: tuple[str, ...]  # the idiomatic mode plus the fastest
    explain: tuple[tuple[str, str], ...] = ()  # (mode, one line: compiled, eager, optimizer) for --help

    @property
    def install(self) -> str:
        """The install command: the package extra of the same name (pyproject.toml holds the pins)."""
        return f"pip install 'ganbench[{self.name}]'"


REGISTRY: dict[str, BackendEntry] = {
    e.name: e
    for e in (
        BackendEntry("torch", "backends.torch_backend", "torch", ("eager", "compile", "func"), ("eager", "func"), (
            ("eager", "nothing compiled; torch.optim fused Adam, foreach RMSprop"),
            ("compile", "torch.compile of the forward+backward passes and of torch.optim's foreach "
                        "steps; the WGAN-GP critic's double backward stays eager"),
            ("func", "each generator iteration (critic updates, penalty, generator update) one "
                     "fullgraph graph: torch.func + hand-written in-place updates; on a CPU inductor's "
                     "C++ wrapper and the block loop eager, on a GPU one CUDA graph per block"))),
        BackendEntry("tf", "backends.tf_backend", "tensorflow", ("eager", "graph", "xla"), ("graph", "xla"), (
            ("eager", "nothing compiled: every op dispatched from Python; the spec's updates written on "
                      "tf.Variables"),
            ("graph", "a whole block of generator iterations (tf.range loops) one tf.function, traced once "
                      "per setup; the same hand-written updates"),
            ("xla", "that tf.function compiled by XLA (jit_compile=True), once per block shape"))),
        BackendEntry("jax", "backends.jax_backend", "jax", ("jit", "scan"), ("jit", "scan"), (
            ("jit", "one jax.jit executable per critic update and one per generator update, called from a "
                    "Python loop; optax transforms for the spec's updates"),
            ("scan", "a whole block (K generator iterations, each a lax.scan over its critic updates) one "
                     "jax.jit executable"))),
    )
}


class UnknownBackend(KeyError):
    def __str__(self) -> str:
        return f"unknown backend {self.args[0]!r}; choose from {', '.join(REGISTRY)}"


def entry(name: str) -> BackendEntry:
    if name not in REGISTRY:
        raise UnknownBackend(name)
    return REGISTRY[name]


def load(name: str) -> type[Backend]:
    """The Backend class for `name`; ImportError if its framework is not installed."""
    return importlib.import_module(entry(name).module).BACKEND
