"""The known races of the designs, as fixed minimal interleavings.

Each sequence is replayed step for step (stateful/replay.py) on the design
that has the bug, where it must raise, and on the designs that do not,
where the very same interleaving must pass: the bug is in the design, not
in the machine. The sequences are what the minimizer printed for them.
"""

from __future__ import annotations

import pytest

from designs.registry import load_designs
from stateful.machine import machine_for
from stateful.replay import Step, minimize, replay

DESIGNS = load_designs()


def alloc() -> Step:
    return Step.of("page_table_alloc", {"cpu": 0, "irq": 0, "mm": 0, "pause": 0})


def free_tlb(table: int = 0) -> Step:
    args = {"batch_alloc_fails": False, "cpu": 0, "irq": 0, "pause": 0, "table": table}
    return Step.of("pte_free_tlb", args)


def flush(**args: int) -> Step:
    return Step.of("tlb_flush_mm_lazy", {"cpu": 0, "irq": 0, "mm": 0, "pause": 0} | args)


# The seed's deadlock: the softirq __tlb_remove_table spins on the lock the
# task it interrupted took with plain spin_lock in __tlb_flush_mm_lazy.
DEADLOCK = [alloc(), alloc(), free_tlb(), flush(irq=1)]
# The unstable mm: __tlb_remove_table saw the other half allocated, then the
# mm exits and is freed on the other CPU before its spin_lock_bh.
UNSTABLE_MM = [
    alloc(),
    alloc(),
    free_tlb(),
    Step.of("softirq", {"which": 0, "pause": 2}),
    Step.of("mm_exit", {"batch_alloc_fails": False, "cpu": 0, "irq": 0, "mm": 0, "pause": 0}),
]
# No deadlock needed: the lock class is used in softirq and with softirqs on.
LOCKDEP = [flush(), alloc(), alloc(), free_tlb(), Step.of("softirq", {"which": 0, "pause": 0})]

CASES = [
    ("deadlock", DEADLOCK, "spins forever: CPU0/softirq:rcu_core interrupted"),
    ("use-after-free", UNSTABLE_MM, "BUG: KASAN: slab-use-after-free in spin_lock_bh"),
    ("lockdep", LOCKDEP, "inconsistent {SOFTIRQ-ON-W} -> {IN-SOFTIRQ-W} usage"),
]


@pytest.mark.parametrize(("prop", "steps", "wording"), CASES, ids=[c[0] for c in CASES])
def test_hugh_hh_race_replays(prop: str, steps: list[Step], wording: str) -> None:
    outcome = replay(machine_for(DESIGNS["hugh-hh"], prop), steps)
    assert outcome.violation is not None and outcome.violation.property == prop
    assert wording in str(outcome.violation)
    assert outcome.skipped == 0


@pytest.mark.parametrize("design", ["upstream-6.4", "full-page-6.8", "global-lock", "merged-6.6"])
@pytest.mark.parametrize(("prop", "steps", "wording"), CASES, ids=[c[0] for c in CASES])
def test_same_interleaving_is_clean_on_designs_without_the_bug(
    design: str, prop: str, steps: list[Step], wording: str
) -> None:
    outcome = replay(machine_for(DESIGNS[design], prop), steps)
    assert outcome.violation is None
    assert outcome.skipped == 0


@pytest.mark.parametrize(("prop", "steps", "wording"), CASES, ids=[c[0] for c in CASES])
def test_spin_lock_bh_everywhere_leaves_only_the_unstable_mm(
    prop: str, steps: list[Step], wording: str
) -> None:
    """hugh-hh-bh: the very interleavings of hugh-hh's deadlock and lockdep
    report are clean; the unstable mm is not."""
    outcome = replay(machine_for(DESIGNS["hugh-hh-bh"], prop), steps)
    if prop == "use-after-free":
        assert outcome.violation is not None and wording in str(outcome.violation)
    else:
        assert outcome.violation is None
    assert outcome.skipped == 0


def defer(table: int = 0) -> Step:
    return Step.of("pte_free_defer", {"cpu": 0, "irq": 0, "pause": 0, "table": table})


# hugh-v1: call_rcu on a page still on pgtable_list (its other half is free).
V1_LISTED = [alloc(), defer()]
# hugh-v1: both halves deferred in one grace period queue one rcu_head twice.
V1_TWICE = [
    alloc(),
    alloc(),
    Step.of("pte_free_defer", {"cpu": 0, "irq": 0, "pause": 0, "table": 0}),
    Step.of("pte_free_defer", {"cpu": 0, "irq": 0, "pause": 0, "table": 0}),
]
# gerald: the page pte_free_defer left off the list is list_del()ed when the
# other half goes (here by exit_mmap in the teardown).
GERALD_LIST_DEL = [alloc(), alloc(), defer(), Step.of("softirq", {"which": 0, "pause": 0})]

DEFER_CASES = [
    ("hugh-v1", "list-corruption", V1_LISTED, "clobbers P0->lru"),
    ("hugh-v1", "rcu-head-reuse", V1_TWICE, "ODEBUG: activate active"),
    ("gerald", "list-corruption", GERALD_LIST_DEL, "list_del corruption"),
]


@pytest.mark.parametrize(
    ("design", "prop", "steps", "wording"), DEFER_CASES, ids=[f"{c[0]}:{c[1]}" for c in DEFER_CASES]
)
def test_pte_free_defer_race_replays(
    design: str, prop: str, steps: list[Step], wording: str
) -> None:
    outcome = replay(machine_for(DESIGNS[design], prop), steps)
    assert outcome.violation is not None and outcome.violation.property == prop
    assert wording in str(outcome.violation)
    assert outcome.skipped == 0


@pytest.mark.parametrize("design", ["merged-6.6", "full-page-6.8", "global-lock"])
@pytest.mark.parametrize(
    ("prop", "steps"), [(c[1], c[2]) for c in DEFER_CASES], ids=[c[0] for c in DEFER_CASES]
)
def test_pte_free_defer_interleavings_are_clean_on_correct_designs(
    design: str, prop: str, steps: list[Step]
) -> None:
    outcome = replay(machine_for(DESIGNS[design], prop), steps)
    assert outcome.violation is None
    # A softirq step may find no callback where a design queues none.
    assert outcome.skipped <= sum(s.rule == "softirq" for s in steps)


def test_deadlock_diagram_reads_like_the_seed() -> None:
    outcome = replay(machine_for(DESIGNS["hugh-hh"], "deadlock"), DEADLOCK)
    diagram = outcome.machine.world.trace.render(2)
    lines = diagram.splitlines()
    assert lines[0].split() == ["CPU0", "CPU1"]
    order = [
        "__tlb_flush_mm_lazy(mm1)",
        "spin_lock(&mm1->context.lock)",
        "<softirq>",
        "__tlb_remove_table(P0.hi)",
        "atomic_read(P0) -> 0x21",
        "spin_lock_bh(&mm1->context.lock)",
        "spins: held by CPU0/task",
        "<-- deadlock",
    ]
    at = 0
    for text in order:  # each after the one before it
        at = next((i for i in range(at, len(lines)) if text in lines[i]), -1)
        assert at >= 0, f"{text!r} missing, or out of order, in\n{diagram}"
    assert all(len(line) <= 80 for line in lines)
    assert lines[-1].strip().endswith("which holds it")


def test_minimizer_removes_what_the_race_does_not_need() -> None:
    noise = [
        flush(cpu=1, irq=3),
        Step.of("rcu_walker", {"cpu": 1, "irq": 0, "pause": 0, "table": 1}),
        Step.of("rcu_walker", {"cpu": 0, "irq": 0, "pause": 0, "table": 0}),
    ]
    padded = noise[:1] + DEADLOCK[:2] + noise[1:] + DEADLOCK[2:]
    machine = machine_for(DESIGNS["hugh-hh"], "deadlock")
    assert replay(machine, padded).violation is not None
    minimal = minimize(machine, padded, "deadlock")
    assert len(minimal) == len(DEADLOCK)
    assert replay(machine, minimal).violation is not None
