"""Ending a child process when the process that started it dies, even by SIGKILL."""

from __future__ import annotations

import ctypes
import signal
import sys

# From <linux/prctl.h>: deliver a signal to this process when its parent dies.
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def exit_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies.

    Linux ties the request to the parent thread, so the thread that started the child
    must live as long as the child should.
    """
    # NOTE: on other systems this does nothing, so a killed parent leaves its child running.
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
