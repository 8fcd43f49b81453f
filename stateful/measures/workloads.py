"""The fixed, seeded workloads: the same operations for every design.

- the memory workload (`memory_workload(seed)`): one operation list, run on
  one CPU, one operation to completion after the other;
- the contention streams (`contention_streams(seed, ncpus, nmms)`): one
  operation list per CPU, for each configuration of CONTENTION_CONFIGS.

Both are drawn from `random.Random` seeded with the seed before any design
runs, and from nothing a design could change, so every design gets the same.
"""

from __future__ import annotations

import random

from attrs import define

# The memory workload: one CPU, operations run to completion one after the
# other, so the figures depend on the design and not on an interleaving.
MEMORY_OPS = 600
MEMORY_MMS = 2  # live at any time: an exit is followed by a new mm
# The population of live tables drifts around this many: allocations are
# more likely below it, frees above it, as in a process that keeps mapping
# and unmapping while its size stays about the same.
MEMORY_TARGET_TABLES = 8
MEMORY_MAX_TABLES = 16
# The weights of the memory workload's operations: a plausible mix of
# munmap, khugepaged and exit, chosen before any design was measured and
# not tuned to one. alloc's weight is the first below the target, the second
# at or above it.
MEMORY_ALLOC = (9, 4)
MEMORY_MIX = (
    ("free", 3),
    ("free_tlb", 4),
    ("defer", 2),
    ("exit_mm", 0.5),
)
# Grace periods end at a steady pace, as they do in time, not at random: a
# long gap drawn by chance would weigh more on every figure than any design.
MEMORY_GP_EVERY = 6

# The contention workloads: one stream per CPU, for each (CPUs, mms) configuration.
CONTENTION_CONFIGS: tuple[tuple[int, int], ...] = ((2, 1), (2, 4), (4, 1), (4, 4))
CONTENTION_OPS_PER_CPU = 100
CONTENTION_MIX = (
    ("alloc", 6),
    ("free", 3),
    ("free_tlb", 4),
    ("defer", 2),
    ("flush", 5),
)
# A process mostly runs where it ran before: one operation in this many goes
# to another mm than the CPU's own.
CONTENTION_OTHER_MM = 8


@define(frozen=True)
class Op:
    """One operation of a workload; picks are taken modulo what exists when it runs."""

    kind: str
    mm: int | None = None  # None: the CPU's own mm (contention workload)
    table: int = 0


def memory_workload(seed: int = 0) -> tuple[Op, ...]:
    """The fixed operation list: the same operations in the same order for every design.

    Which operations can run depends only on how many tables each mm has,
    which no design changes, so the list is drawn with that count alone."""
    rng = random.Random(seed)
    # The mm (its index in creation order) of each live table, in allocation
    # order: the order in which the runner keeps them too.
    order: list[int] = []
    workload: list[Op] = []
    for i in range(MEMORY_OPS):
        if i % MEMORY_GP_EVERY == MEMORY_GP_EVERY - 1:
            workload.append(Op("grace_period"))
            continue
        total = len(order)
        mix = [(k, w) for k, w in MEMORY_MIX if total or k not in ("free", "free_tlb", "defer")]
        if total < MEMORY_MAX_TABLES:
            mix.append(("alloc", MEMORY_ALLOC[total >= MEMORY_TARGET_TABLES]))
        kind = rng.choices([k for k, _ in mix], [w for _, w in mix])[0]
        if kind == "alloc":
            mm = rng.randrange(MEMORY_MMS)
            order.append(mm)
            workload.append(Op("alloc", mm=mm))
        elif kind in ("free", "free_tlb", "defer"):
            pick = rng.randrange(total)
            order.pop(pick)
            workload.append(Op(kind, table=pick))
        else:
            mm = rng.randrange(MEMORY_MMS)
            # The exited mm leaves the list; its successor is added at its end.
            order = [m if m < mm else m - 1 for m in order if m != mm]
            workload.append(Op("exit_mm", mm=mm))
    return tuple(workload)


def contention_streams(seed: int, ncpus: int, nmms: int) -> tuple[tuple[Op, ...], ...]:
    """Each CPU's operations, drawn before the run: the same for every design."""
    rng = random.Random(seed * 1000 + ncpus * 10 + nmms)
    kinds = [k for k, _ in CONTENTION_MIX]
    weights = [w for _, w in CONTENTION_MIX]
    streams = []
    for _ in range(ncpus):
        stream = []
        for _ in range(CONTENTION_OPS_PER_CPU):
            kind = rng.choices(kinds, weights)[0]
            other = rng.randrange(CONTENTION_OTHER_MM) == 0
            mm = rng.randrange(nmms) if other else None
            stream.append(Op(kind, mm=mm, table=rng.randrange(1 << 16)))
        streams.append(tuple(stream))
    return tuple(streams)
