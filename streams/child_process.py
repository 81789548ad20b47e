"""Children that do not outlive the process that started them, even when it is killed.

A demo (or a test session) stopped by SIGKILL runs no cleanup: its worker, connector and
broker would keep running, holding ports and CPU. On Linux, `prctl(PR_SET_PDEATHSIG)` has
the kernel send the child SIGTERM when its parent dies, which each of them handles as a
normal stop. Elsewhere nothing is set up (the parents still stop their children themselves
on any other exit).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that ties the child's life to this process's
    (None where the platform cannot). The kernel ties it to the thread that forks: start
    such children from the main thread, not from `asyncio.to_thread`."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def tie() -> None:  # runs in the child, between fork and exec
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return tie
