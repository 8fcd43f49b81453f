"""The memory-waste workloads: three fixed, seeded operation lists a kernel developer knows.

- churn:    one process maps and unmaps many small VMAs: faults allocate a
            table per small mapping, munmap frees one (pte_free_tlb), and the
            number of live tables wanders around a target;
- collapse: khugepaged collapses file THPs in two processes: it retracts a
            table (pte_free_defer), the process faults the range again; a few
            munmaps besides;
- forkexit: a parent with a few tables forks short-lived children; each
            child's fork allocates its tables (copy_page_range), it faults a
            few more, and it exits (exit_mmap frees them all);
- grow:     one process grows: it maps a long-lived region, then a temporary
            one, and unmaps the temporary one, again and again (a loader, or
            a heap growing by mmap beside short-lived buffers). Not one the
            issue names: it is the pattern "only half of the pgtable memory"
            needs, made on purpose to see which designs reach it.

Each workload begins with a setup that the samples leave out: the tables a
process has mapped before the measured part starts (churn and collapse map
their target, forkexit's parent its own), so that the first samples are not
one or two tables on a page, which says nothing of waste.

Each is one operation list drawn from `random.Random(seed)` before any design
runs, from nothing a design could change (which operations can run depends
only on how many tables and mms exist), so every design gets the same list.
The operations are the model's own (stateful/ops.py), run to completion one
after the other on one CPU, as the memory workload runs (memory.py). A grace
period ends every WASTE_GP_EVERY operations, at the memory workload's pace:
steadily, as time ends them, not by a draw. A design without pte_free_defer
runs munmap instead (the run counts it), which makes upstream-6.4 the
re-adding baseline of collapse.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from attrs import define

from stateful.measures.workloads import MEMORY_GP_EVERY, Op

WASTE_OPS = 600
WASTE_GP_EVERY = MEMORY_GP_EVERY

# churn: one mm; alloc is likelier below the target, munmap above it.
CHURN_TARGET_TABLES = 24
CHURN_MAX_TABLES = 48
CHURN_WEIGHTS = ((2, 1), (1, 2))  # (alloc, munmap) below the target, then at or above it

# collapse: two mms; khugepaged's retract is the usual free, munmap the rare one.
COLLAPSE_MMS = 2
COLLAPSE_TARGET_TABLES = 16
COLLAPSE_ALLOC = (6, 3)  # below the target, then at or above it: above or below the frees
COLLAPSE_DEFER = 3
COLLAPSE_MUNMAP = 1

# forkexit: the parent's tables, then children that fork, fault and exit.
FORKEXIT_PARENT_TABLES = 6
FORKEXIT_CHILD_TABLES = (1, 4)  # tables a fork allocates in the child, drawn in this range
FORKEXIT_MAX_CHILDREN = 6
FORKEXIT_WEIGHTS = (("fork", 2), ("alloc", 2), ("exit", 2))


@define
class _Drawn:
    """The state a workload's draw depends on: live tables per mm, in the runner's order."""

    rng: random.Random
    ops: list[Op]
    tables: list[int]  # the mm (index among live mms) of each live table, allocation order
    mms: int  # live mms
    since_grace_period: int = 0  # operations since the last grace period

    def grace_period_due(self) -> bool:
        return self.since_grace_period >= WASTE_GP_EVERY - 1

    def alloc(self, mm: int) -> None:
        self.tables.append(mm)
        self.ops.append(Op("alloc", mm=mm))

    def free(self, kind: str) -> None:
        self.free_at(kind, self.rng.randrange(len(self.tables)))

    def free_at(self, kind: str, pick: int) -> None:
        self.tables.pop(pick)
        self.ops.append(Op(kind, table=pick))

    def exit(self, mm: int) -> None:
        self.tables = [m if m < mm else m - 1 for m in self.tables if m != mm]
        self.mms -= 1
        self.ops.append(Op("exit", mm=mm))

    def fork(self) -> int:
        self.mms += 1
        self.ops.append(Op("fork"))
        return self.mms - 1


def _run(
    seed: int, mms: int, setup: Callable[[_Drawn], None], draw: Callable[[_Drawn], None]
) -> tuple[tuple[Op, ...], tuple[Op, ...]]:
    """(the setup, the measured operations)."""
    d = _Drawn(random.Random(seed), [], [], mms)
    setup(d)
    first = tuple(d.ops)
    d.ops = []
    while len(d.ops) < WASTE_OPS:
        if d.grace_period_due():
            d.ops.append(Op("grace_period"))
            d.since_grace_period = 0
        else:
            before = len(d.ops)
            draw(d)
            d.since_grace_period += len(d.ops) - before
    return first, tuple(d.ops[:WASTE_OPS])


def _choose(rng: random.Random, mix: list[tuple[str, float]]) -> str:
    return rng.choices([k for k, _ in mix], [w for _, w in mix])[0]


Ops = tuple[tuple[Op, ...], tuple[Op, ...]]


def churn(seed: int = 0) -> Ops:
    def setup(d: _Drawn) -> None:
        for _ in range(CHURN_TARGET_TABLES):
            d.alloc(0)

    def draw(d: _Drawn) -> None:
        n = len(d.tables)
        alloc_w, munmap_w = CHURN_WEIGHTS[n >= CHURN_TARGET_TABLES]
        mix: list[tuple[str, float]] = []
        if n < CHURN_MAX_TABLES:
            mix.append(("alloc", alloc_w))
        if n:
            mix.append(("free_tlb", munmap_w))
        if _choose(d.rng, mix) == "alloc":
            d.alloc(0)
        else:
            d.free("free_tlb")

    return _run(seed, 1, setup, draw)


def collapse(seed: int = 0) -> Ops:
    def setup(d: _Drawn) -> None:
        for i in range(COLLAPSE_TARGET_TABLES):
            d.alloc(i % COLLAPSE_MMS)

    def draw(d: _Drawn) -> None:
        n = len(d.tables)
        mix: list[tuple[str, float]] = [("alloc", COLLAPSE_ALLOC[n >= COLLAPSE_TARGET_TABLES])]
        if n:
            mix += [("defer", COLLAPSE_DEFER), ("free_tlb", COLLAPSE_MUNMAP)]
        kind = _choose(d.rng, mix)
        if kind == "alloc":
            d.alloc(d.rng.randrange(d.mms))
        else:
            d.free(kind)

    return _run(seed, COLLAPSE_MMS, setup, draw)


def forkexit(seed: int = 0) -> Ops:
    def setup(d: _Drawn) -> None:
        for _ in range(FORKEXIT_PARENT_TABLES):
            d.alloc(0)

    def draw(d: _Drawn) -> None:
        children = d.mms - 1
        mix = [
            (kind, w)
            for kind, w in FORKEXIT_WEIGHTS
            if (kind == "fork" and children < FORKEXIT_MAX_CHILDREN)
            or (kind != "fork" and children > 0)
        ]
        kind = _choose(d.rng, mix)
        if kind == "fork":
            child = d.fork()
            for _ in range(d.rng.randint(*FORKEXIT_CHILD_TABLES)):
                d.alloc(child)
        elif kind == "alloc":
            d.alloc(1 + d.rng.randrange(children))
        else:
            d.exit(1 + d.rng.randrange(children))

    return _run(seed, 1, setup, draw)


def grow(seed: int = 0) -> Ops:
    """No draw at all: the seed changes nothing, the pattern is the point."""

    steps = itertools.count()

    def setup(d: _Drawn) -> None:
        d.alloc(0)

    def draw(d: _Drawn) -> None:
        if next(steps) % 3 < 2:
            d.alloc(0)  # the long-lived region, then the temporary one
        else:
            d.free_at("free_tlb", len(d.tables) - 1)

    return _run(seed, 1, setup, draw)


@define(frozen=True)
class Workload:
    name: str
    what: str  # one line, for the table and the plot
    mms: int  # live at the start
    ops: Callable[[int], Ops]  # seed -> (setup, measured operations)


WASTE_WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("churn", "1 process maps and unmaps small VMAs (fault, munmap)", 1, churn),
        Workload(
            "collapse",
            "khugepaged retracts file THP tables in 2 processes (pte_free_defer), refaults",
            COLLAPSE_MMS,
            collapse,
        ),
        Workload(
            "forkexit", "a parent forks short-lived children that fault and exit", 1, forkexit
        ),
        Workload(
            "grow",
            "1 process maps a long-lived and a temporary region, unmaps the temporary: made "
            "to need half",
            1,
            grow,
        ),
    )
}
