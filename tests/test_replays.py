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
from replay_helpers import BUILTIN, DESIGNS, KNOWN, KNOWN_IDS, REPLAYS, replayed_on_its_design

from stateful.replay_file import check_replay, load_replay

FILES = sorted(REPLAYS.glob("*.json"))


@pytest.mark.parametrize(("design", "prop"), KNOWN, ids=KNOWN_IDS)
def test_every_known_bug_has_a_replay_file(design: str, prop: str) -> None:
    path = REPLAYS / f"{design}--{prop}.json"
    assert path.exists(), f"{path} missing: `pytest --design {design}` saves it"
    assert load_replay(path).property == prop


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_replay_file_reproduces_its_violation(path: Path) -> None:
    replay, check = replayed_on_its_design(path)
    assert str(check.violation).splitlines()[0] == replay.expected
    assert check.as_recorded


PROPERTY = {path: load_replay(path).property for path in FILES}
ELSEWHERE = [
    (path, design)
    for path in FILES
    for design, cls in sorted(BUILTIN.items())
    if PROPERTY[path] not in cls.known
]


@pytest.mark.parametrize(("path", "design"), ELSEWHERE, ids=[f"{p.stem}@{d}" for p, d in ELSEWHERE])
def test_replay_file_is_clean_on_designs_without_the_bug(path: Path, design: str) -> None:
    """Where a step cannot run (pte_free_defer on a design without it), the
    replay says it cannot tell; it must still not produce the bug."""
    check = check_replay(path, load_replay(path), DESIGNS[design])
    assert check.violation is None, f"{check.summary()}\n\n{check.diagram}"


# Each known bug and the design that fixes it (../shared/designs.md): the fix
# must run the very same interleaving, every step, to its end.
FIXED_SIBLING = {
    ("hugh-hh", "deadlock"): "hugh-hh-bh",  # spin_lock_bh in __tlb_flush_mm_lazy
    ("hugh-hh", "lockdep"): "hugh-hh-bh",
    ("hugh-hh", "use-after-free"): "typesafe-rcu",  # the lock outlives the mm
    ("hugh-hh-bh", "use-after-free"): "typesafe-rcu",
    ("hugh-v1", "list-corruption"): "hugh-hh",  # HH bits: no call_rcu on a listed page
    # the second half waits for the first (and, with the shift, is queued)
    ("hugh-v1", "rcu-head-reuse"): "global-lock-intended",
    # The lock pte_free_now needs in softirq is another lock than the one
    # the flush holds (on hugh-hh-bh the softirq could not even start).
    ("hugh-v1", "deadlock"): "global-lock-intended",
    ("hugh-v1", "lockdep"): "hugh-hh-bh",
    # Gerald's own v2 (28 Jun): no list_del() without a list_add(). merged-6.6
    # queues no callback at pte_free_defer here, so the softirq step cannot run.
    ("gerald", "list-corruption"): "gerald-v2",
    # c2c224932fd0's temporary PP: the callback cannot free the page under the list_del.
    ("pre-c2c-5.16", "use-after-free"): "upstream-6.4",
    # The posted pte_free_half tests `mask & 0x0CU` without `mask >>= 24`:
    # the intended shift queues the other half's deferred free.
    ("hugh-hh", "leak"): "global-lock-intended",
    ("hugh-hh-bh", "leak"): "global-lock-intended",
    ("gerald", "leak"): "global-lock-intended",
    ("global-lock", "leak"): "global-lock-intended",
    ("typesafe-rcu", "leak"): "global-lock-intended",
    ("gerald-v2", "leak"): "global-lock-intended",
}


@pytest.mark.parametrize(("design", "prop"), KNOWN, ids=KNOWN_IDS)
def test_every_known_bug_has_a_fixed_sibling(design: str, prop: str) -> None:
    assert (design, prop) in FIXED_SIBLING


SIBLINGS = sorted(FIXED_SIBLING.items())


@pytest.mark.parametrize(
    ("bug", "sibling"), SIBLINGS, ids=[f"{d}--{p}@{s}" for (d, p), s in SIBLINGS]
)
def test_replay_no_longer_happens_on_the_fixed_sibling(bug: tuple[str, str], sibling: str) -> None:
    path = REPLAYS / f"{bug[0]}--{bug[1]}.json"
    check = check_replay(path, load_replay(path), DESIGNS[sibling])
    assert check.as_recorded and check.violation is None and check.other is None, check.summary()
    assert "no longer happens" in check.summary()


BEYOND = sorted((REPLAYS / "beyond-known").glob("*.json"))


@pytest.mark.parametrize("path", BEYOND, ids=[f.name for f in BEYOND])
def test_a_bug_found_beyond_the_default_run_still_reproduces(path: Path) -> None:
    """replays/beyond-known/: real bugs the random survey met under other
    draws (1 run in 6,000), which the default run does not find every time,
    so its design does not list them in `known` (docs/findings.md). Each
    must still end in its violation on its design, as recorded."""
    replay, check = replayed_on_its_design(path)
    assert replay.property not in DESIGNS[replay.design].known
    assert str(check.violation).splitlines()[0] == replay.expected
    assert check.as_recorded


def test_the_bugs_found_beyond_the_default_run_are_there() -> None:
    assert [p.name for p in BEYOND] == ["hugh-v1--bad-bits.json", "hugh-v1--double-alloc.json"]
