"""The saved replay files: each known bug's, replayed exactly.

replays/ holds one file per known bug of the built-in designs, written by
`pytest` when it found them. Each must still end in its violation, worded
as recorded, on its design; and on every design that does not list that
bug, the very same rule calls must not produce it: that is how a fixed
sibling (hugh-hh-bh for hugh-hh's deadlock) shows that the fix holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from replay_helpers import BUILTIN, DESIGNS, KNOWN, KNOWN_IDS, REPLAYS

from stateful.replay_file import check_replay, load_replay

FILES = sorted(REPLAYS.glob("*.json"))


@pytest.mark.parametrize(("design", "prop"), KNOWN, ids=KNOWN_IDS)
def test_every_known_bug_has_a_replay_file(design: str, prop: str) -> None:
    path = REPLAYS / f"{design}--{prop}.json"
    assert path.exists(), f"{path} missing: `pytest --design {design}` saves it"
    assert load_replay(path).property == prop


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_replay_file_reproduces_its_violation(path: Path) -> None:
    replay = load_replay(path)
    check = check_replay(path, replay, DESIGNS[replay.design])
    assert check.violation is not None, check.summary()
    assert check.violation.property == replay.property
    assert str(check.violation).splitlines()[0] == replay.expected
    assert check.skipped == 0


ELSEWHERE = [
    (path, design)
    for path in FILES
    for design, cls in sorted(BUILTIN.items())
    if load_replay(path).property not in cls.known
]


@pytest.mark.parametrize(("path", "design"), ELSEWHERE, ids=[f"{p.stem}@{d}" for p, d in ELSEWHERE])
def test_replay_file_is_clean_on_designs_without_the_bug(path: Path, design: str) -> None:
    check = check_replay(path, load_replay(path), DESIGNS[design])
    assert check.violation is None, f"{check.summary()}\n\n{check.diagram}"
    assert "no longer happens" in check.summary() or check.other is not None
