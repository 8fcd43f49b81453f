"""`pytest --replay FILE` and `pgfrag --replay FILE`, and the bad inputs they refuse.

A replay fails while its violation still happens and passes once it no
longer does: that is how a developer checks a fix. A file that cannot be
used is a usage error naming the file and the problem, and is left as it was.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stateful.replay_file import ReplayError, ReplayFile, load_replay, save_replay

ROOT = Path(__file__).resolve().parent.parent
DEADLOCK = ROOT / "replays" / "hugh-hh--deadlock.json"
LEAK = ROOT / "replays" / "hugh-hh--leak.json"  # alloc, alloc, pte_free_defer x2
USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR


def _run(*args: str, cli: bool = False) -> subprocess.CompletedProcess[str]:
    command = ["-m", "stateful.cli"] if cli else ["-m", "pytest", "-q", "-n", "0"]
    return subprocess.run(
        [sys.executable, *command, *args],
        cwd=ROOT,
        env=dict(os.environ, HYPOTHESIS_PROFILE="smoke"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """The output with its lines joined: the replay lines are wrapped for a mail."""
    return " ".join(done.stdout.split())


def test_replay_fails_while_the_violation_happens() -> None:
    done = _run("--replay", str(DEADLOCK.relative_to(ROOT)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "on hugh-hh: deadlock STILL HAPPENS" in _said(done)
    assert re.search(r"spin_lock_bh\(&mm\d->context\.lock\)", _said(done))  # the diagram


def test_replay_on_the_fixed_sibling_passes() -> None:
    done = _run("--replay", str(DEADLOCK.relative_to(ROOT)), "--design", "hugh-hh-bh")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on hugh-hh-bh (recorded on hugh-hh): deadlock no longer happens" in _said(done)
    assert "1 passed" in _said(done)


def test_replay_that_cannot_run_a_step_says_it_cannot_tell() -> None:
    """upstream-6.4 offers no pte_free_defer: its verdict would be about
    another interleaving, so the replay fails rather than pass."""
    done = _run("--replay", str(LEAK.relative_to(ROOT)), "--design", "upstream-6.4")
    assert done.returncode == 1, done.stdout + done.stderr
    said = _said(done)
    assert "leak CANNOT BE TOLD: steps 3 (pte_free_defer) and 4 (pte_free_defer) of 4" in said


def test_pgfrag_replays_a_file_from_anywhere(tmp_path: Path) -> None:
    mailed = tmp_path / "from-the-list.json"
    mailed.write_bytes(DEADLOCK.read_bytes())
    done = _run("--replay", str(mailed), "--design", "hugh-hh", "--design", "global-lock", cli=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "on hugh-hh: deadlock STILL HAPPENS" in _said(done)
    assert "on global-lock (recorded on hugh-hh): deadlock no longer happens" in _said(done)


def _refused(path: Path, *extra: str) -> str:
    before = path.read_bytes()
    done = _run(f"--replay={path}", *extra)
    assert done.returncode == USAGE_ERROR, done.stdout + done.stderr
    assert path.read_bytes() == before  # nothing overwritten
    return done.stderr


def test_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(DEADLOCK.read_text()[:200])
    assert f"replay file {path}: not valid JSON (line" in _refused(path)


def test_file_from_another_model_version_is_refused(tmp_path: Path) -> None:
    doc = json.loads(DEADLOCK.read_text())
    doc["model_version"] = 0
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    message = _refused(path)
    assert "recorded with kernel model version 0" in message
    assert "pgfrag --design hugh-hh --property deadlock" in message


def test_file_naming_an_unknown_design_is_refused(tmp_path: Path) -> None:
    doc = json.loads(DEADLOCK.read_text())
    doc["design"] = "hugh-hh-v3"
    path = tmp_path / "v3.json"
    path.write_text(json.dumps(doc))
    message = _refused(path)
    assert "recorded on design 'hugh-hh-v3', which does not exist here; valid:" in message


def test_unknown_design_on_the_command_line_is_refused() -> None:
    assert "--design 'hugh-hh-v3': no such design" in _refused(DEADLOCK, "--design", "hugh-hh-v3")


def test_file_with_an_unknown_rule_is_refused(tmp_path: Path) -> None:
    doc = json.loads(DEADLOCK.read_text())
    doc["steps"][0]["rule"] = "page_table_alloc_bulk"
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(doc))
    assert "step 1: no rule named 'page_table_alloc_bulk'" in _refused(path)


def test_file_with_a_missing_argument_is_refused(tmp_path: Path) -> None:
    doc = json.loads(DEADLOCK.read_text())
    del doc["steps"][3]["args"]["irq"]
    path = tmp_path / "args.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ReplayError, match=r"step 4 \(tlb_flush_mm_lazy\): arguments"):
        load_replay(path)


def test_saving_never_overwrites_a_different_file(tmp_path: Path) -> None:
    replay = load_replay(DEADLOCK)
    taken = tmp_path / replay.default_name
    taken.write_text("{ a developer's hand-edited, broken file")
    saved = save_replay(replay, tmp_path)
    assert saved != taken and taken.read_text().startswith("{ a developer's")
    assert load_replay(saved) == replay
    assert save_replay(replay, tmp_path) == saved  # the same content: the same file


def test_file_round_trips(tmp_path: Path) -> None:
    replay = load_replay(DEADLOCK)
    shorter = ReplayFile(replay.design, replay.property, replay.steps[:2], "x")
    assert load_replay(save_replay(shorter, tmp_path)) == shorter
    with pytest.raises(Exception, match="no such file"):
        load_replay(tmp_path / "missing.json")
