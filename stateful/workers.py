"""Worker processes that die with the process that started them.

A benchmark's search can run for hours in a worker of a process pool. If
the benchmark is killed (`kill PID`, `timeout`, a lost terminal), a worker
of concurrent.futures lives on as an orphan and keeps its core busy, unseen,
under whatever is measured next. On Linux each worker asks the kernel to
send it SIGTERM when the process that started it ends (prctl
PR_SET_PDEATHSIG); elsewhere it is left as concurrent.futures makes it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        return  # not allowed here: the worker is as concurrent.futures made it
    # The parent may have ended before the request was made.
    if os.getppid() != parent:
        os._exit(1)


def pool(jobs: int, **kwargs: Any) -> ProcessPoolExecutor:
    """A ProcessPoolExecutor of `jobs` workers that each die with this process."""
    return ProcessPoolExecutor(
        max_workers=jobs, initializer=_die_with, initargs=(os.getpid(),), **kwargs
    )
