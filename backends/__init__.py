"""One module per framework behind one Backend protocol (base.py), found through the
registry (registry.py) and imported only when asked for; common.py holds what all three do
the same way. Importing this package imports no framework.
"""

from backends.base import Backend
from backends.registry import REGISTRY, BackendEntry, UnknownBackend, entry, load
from bench.core.gan import METRICS

__all__ = ["METRICS", "REGISTRY", "Backend", "BackendEntry", "UnknownBackend", "entry", "load"]
