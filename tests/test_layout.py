"""The house's plan, held by tests: imports point down the layers, with no circles, and
only a backend module imports its framework (bench/__init__.py draws the layers)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

import backends

# Layer of each package: a module may import its own layer and those below, never above.
# backends and bench.analysis are siblings: neither imports the other.
LAYERS = {"bench.core": 0, "bench.analysis": 1, "backends": 1, "bench.run": 2, "bench.tools": 3, "bench": 4}
FRAMEWORKS = {"torch", "tensorflow", "jax", "flax", "optax", "keras"}
OWN_FRAMEWORK = {"backends.torch_backend": {"torch"}, "backends.tf_backend": {"tensorflow", "keras"},
                 "backends.jax_backend": {"jax", "flax", "optax"},
                 "bench.tools.baselines.torch_loop": {"torch"},
                 "bench.tools.baselines.tf_loop": {"tensorflow", "keras"},
                 "bench.tools.baselines.jax_loop": {"jax", "flax", "optax"},
                 # its torch and jax workers each run in a process of their own, importing inside the worker
                 "bench.tools.profile_step": {"torch", "jax"}}


def modules() -> dict[str, Path]:
    files = [*ROOT.glob("bench/**/*.py"), *ROOT.glob("backends/**/*.py")]
    out = {}
    for f in files:
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def imports(path: Path, name: str) -> set[str]:
    """Every module `path` imports, at its top or inside a function (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from bench.core import nets`
    return found


def layer(module: str) -> tuple[str, int]:
    for pkg in sorted(LAYERS, key=len, reverse=True):
        if module == pkg or module.startswith(pkg + "."):
            return pkg, LAYERS[pkg]
    raise AssertionError(f"{module} is in no layer")


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {i for i in imports(f, m) if i in mods and i != m} for m, f in mods.items()}


def test_imports_point_down_only():
    wrong = []
    for m, deps in graph().items():
        pkg, rank = layer(m)
        for d in deps:
            dpkg, drank = layer(d)
            if d in ("bench", "backends"):  # a package's own __init__ (paths, the registry) is its floor
                continue
            if drank > rank or (drank == rank and dpkg != pkg):
                wrong.append(f"{m} ({pkg}) imports {d} ({dpkg})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circles():
    g, state, cycles = graph(), {}, []

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for d in sorted(g[m]):
            if state.get(d) == "open":
                cycles.append(" -> ".join([*path[path.index(d):], d]))
            elif d not in state:
                visit(d, [*path, d])
        state[m] = "done"

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_only_a_backend_imports_its_framework():
    wrong = []
    for m, f in modules().items():
        used = {i.split(".")[0] for i in imports(f, m)} & FRAMEWORKS
        if used - OWN_FRAMEWORK.get(m, set()):
            wrong.append(f"{m} imports {sorted(used)}")
    assert not wrong, "\n".join(wrong)


def test_the_rules_see_a_violation(tmp_path):
    """The checker itself: an upward import is found."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from bench.run import runner\n", encoding="utf-8")
    assert "bench.run.runner" in imports(f, "bench.core.m")
    assert layer("bench.run.runner")[1] > layer("bench.core.m")[1]


def test_backend_modules_define_the_same_public_names():
    """Three translations of one skeleton: the same public surface in every backend module
    (its Backend class aside); what is framework-specific stays private."""
    surface = {}
    for name, e in backends.REGISTRY.items():
        tree = ast.parse((ROOT / (e.module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
        names = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
        bound = next(n.value.id for n in tree.body if isinstance(n, ast.Assign)
                     and any(isinstance(t, ast.Name) and t.id == "BACKEND" for t in n.targets))
        # the framework module itself (tf = _import_tensorflow()) is not part of the surface
        surface[name] = {n for n in names if not n.startswith("_") and n not in (bound, "tf")}
    first = next(iter(surface.values()))
    assert all(s == first for s in surface.values()), surface
    assert first == {"BACKEND", "Ops", "apply_optimizer"}


def test_the_readme_layout_names_every_module():
    """The README's Layout block is the plan a reader trusts: each module of bench/ and
    backends/ is named there (the hand-written loops under one `baselines/`)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    words = set(re.findall(r"[A-Za-z_]+", block))
    missing = [m for m in modules() if ".baselines" not in m and m.split(".")[-1] not in words
               and m not in ("bench", "backends", "bench.__main__")]
    assert not missing, f"README's Layout does not name {missing}"
