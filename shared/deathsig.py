"""A process that must not outlive its parent asks the kernel for SIGKILL when the parent dies (Linux's
PR_SET_PDEATHSIG): `recap up`'s children, and each Celery pool child under its worker."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1
# Resolved at import, before any fork: the call may run between fork and exec, where loading a library is unsafe.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (a no-op off Linux; `recap up` reaps leftovers there)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
