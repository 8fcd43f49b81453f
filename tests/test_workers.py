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

# A pool whose one worker reports its pid, then sleeps as a long search would.
SCRIPT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from stateful import workers

pool = workers.pool(1) if sys.argv[1] == "workers" else ProcessPoolExecutor(1)
print(pool.submit(os.getpid).result(), flush=True)
pool.submit(time.sleep, 60)
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
    _, alive = _worker_after_parent_killed("workers", wait=5)
    assert not alive
    # The control: concurrent.futures' own worker outlives its parent.
    orphan, alive = _worker_after_parent_killed("plain", wait=1)
    try:
        assert alive
    finally:
        if alive:
            os.kill(orphan, signal.SIGKILL)
