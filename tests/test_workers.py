"""A benchmark killed mid-run leaves no worker behind (stateful/workers.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A pool whose one worker, once in its job, tells its pid and sleeps as a
# long search would: killed then, the parent leaves a worker that is busy,
# not one that would see its queue closed and leave on its own.
SCRIPT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from stateful import workers

def search():
    print(os.getpid(), flush=True)
    time.sleep(60)

pool = workers.pool(1) if sys.argv[1] == "workers" else ProcessPoolExecutor(1)
pool.submit(search)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _worker_after_parent_killed(kind: str, wait: float) -> tuple[int, bool]:
    parent = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, kind], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + wait
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return worker, _alive(worker)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_with_the_benchmark_that_started_it() -> None:
    worker, alive = _worker_after_parent_killed("workers", wait=5)
    _reap(worker, alive)
    assert not alive
    # The control: concurrent.futures' own worker outlives its parent.
    orphan, alive = _worker_after_parent_killed("plain", wait=1)
    _reap(orphan, alive)
    assert alive


def _reap(pid: int, alive: bool) -> None:
    """Leave no process behind, whatever the test finds."""
    if alive:
        os.kill(pid, signal.SIGKILL)
