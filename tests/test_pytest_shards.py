"""`pytest --exhaustive --shard-depth K`: a design's search as shard tests that
pytest-xdist spreads over its workers, merged into the same table as one
search gives, with the same failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stateful.exhaustive import PROVED

ROOT = Path(__file__).resolve().parent.parent
C2C = "S=3,C=1,P=0,I=1"  # c2c224932fd0's race, and little else: seconds


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_verdicts.py", "--progress", "0", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _row(out: str, design: str) -> list[str]:
    table = out[out.index("designs x properties") :]
    line = next(line for line in table.splitlines() if line.startswith(design + " "))
    return line.replace(PROVED, "proved").split()[1:]


def test_the_sharded_table_is_the_whole_search_table(tmp_path: Path) -> None:
    common = ["--exhaustive", "--bound", C2C, "--design", "pre-c2c-5.16", "-p", "no:randomly"]
    whole = _pytest(*common, "-n", "0", "--replay-dir", str(tmp_path / "whole"))
    sharded = _pytest(
        *common, "--shard-depth", "2", "-n", "2", "--replay-dir", str(tmp_path / "sharded")
    )
    assert whole.returncode == 0, whole.stdout[-3000:]
    assert sharded.returncode == 0, sharded.stdout[-3000:] + sharded.stderr[-3000:]
    assert "shard-1-of-" in _pytest(*common, "--shard-depth", "2", "--collect-only", "-q").stdout
    assert _row(sharded.stdout, "pre-c2c-5.16") == _row(whole.stdout, "pre-c2c-5.16")
    assert _row(sharded.stdout, "pre-c2c-5.16")[2] == "FOUND"  # use-after-free
    assert "pre-c2c-5.16: exhaustive ≤B in " in sharded.stdout
    # The same shortest counterexample, replayed by the controller: its diagram and file.
    assert "shortest within B: use-after-free: 4 rule calls" in sharded.stdout
    assert (tmp_path / "sharded" / "pre-c2c-5.16--use-after-free.json").exists()


def test_a_known_bug_the_shards_miss_fails_the_run(tmp_path: Path) -> None:
    run = _pytest(
        "--exhaustive", "--bound", "S=1,C=1,P=0,I=0", "--design", "pre-c2c-5.16",
        "--shard-depth", "1", "-n", "0", "--replay-dir", str(tmp_path),
    )  # fmt: skip
    assert run.returncode == 1, run.stdout[-3000:]
    assert _row(run.stdout, "pre-c2c-5.16")[2] == "MISSED"


def test_shard_depth_needs_exhaustive_and_a_count() -> None:
    alone = _pytest("--shard-depth", "1", "--design", "pre-c2c-5.16")
    assert alone.returncode == 4
    assert "--shard-depth splits the --exhaustive search; give both" in alone.stderr
    negative = _pytest("--exhaustive", "--shard-depth", "-1", "--design", "pre-c2c-5.16")
    assert negative.returncode == 4
    assert "--shard-depth -1: give a number of setup operations" in negative.stderr
