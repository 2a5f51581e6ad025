"""Ending a child process when the process that started it dies, even by SIGKILL."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

# From <linux/prctl.h>: deliver a signal to this process when its parent dies.
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def exit_with_parent(parent_pid: int | None = None) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies.

    Linux ties the request to the parent thread, so the thread that started the child
    must live as long as the child should. With `parent_pid`, a parent that died before
    the request ends this process at once.
    """
    # NOTE: on other systems this does nothing, so a killed parent leaves its child running.
    if _libc is None:
        return
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(errno)}")
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)
