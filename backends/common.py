"""What every backend may share without reaching into the runner. Imports no framework."""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def die_with(parent: int) -> None:
    """Die with the process that started this one, even when it is SIGKILLed (a Ray task
    force-cancelled, a killed rank 0): nothing may outlive the run that wanted it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)
