"""Child processes that cannot outlive the harness, even when it is killed with SIGKILL.

The runner starts workers and servers in their own sessions (so a timeout can kill a whole process
group), which also means nothing stops them when the runner itself dies without unwinding. Linux's
parent-death signal closes that gap: the kernel signals the child when the process that started it exits.
"""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` asking the kernel to send `sig` to the child when its parent exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None

    def preexec() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # best effort: the runner still cleans up on every orderly exit

    return preexec
