"""What a measure gives: the figures of each workload, and what stopped one."""

from __future__ import annotations

import statistics

from attrs import define


@define(frozen=True)
class Stop:
    """A violation ended a workload before its last operation."""

    property: str
    after_ops: int
    message: str

    def __str__(self) -> str:
        return f"stopped by {self.property} after {_count_ops(self.after_ops)}"


def _count_ops(n: int) -> str:
    return f"{n} op" if n == 1 else f"{n} ops"


@define(frozen=True)
class Memory:
    """pgtable pages per live 2K table, one sample after every operation with a table live."""

    mean: float | None
    peak: float | None
    # Pages that hold at least one live table, per live table: without the
    # pages waiting for RCU or for their other half. Exactly 1.0 for one page
    # per table; what fragments save shows as less.
    held_mean: float | None
    samples: int


@define(frozen=True)
class ReuseDelay:
    """From the start of the operation that frees a table until it could be handed out again.

    In kernel steps (`World.steps`), and in operations of the workload: steps
    also count how many steps each design's operations take, operations are
    the same clock for every design (0: usable again when its free returned)."""

    frees: int  # 2K (or 4K) tables freed
    mean: float | None  # steps, over the tables that became usable again
    max: int | None
    mean_ops: float | None
    max_ops: int | None
    never: int  # still unusable when the workload ended, with RCU quiet


@define(frozen=True)
class Contention:
    ncpus: int
    nmms: int
    ops: int  # task operations completed
    spins: dict[str, int]  # lock class -> acquisitions that had to spin
    acquisitions: dict[str, int]  # lock class -> all acquisitions
    stop: Stop | None = None
    reported: tuple[str, ...] = ()  # warning-class properties reported on the way

    @property
    def total_spins(self) -> int:
        return sum(self.spins.values())

    @property
    def total_acquisitions(self) -> int:
        return sum(self.acquisitions.values())


@define(frozen=True)
class Measures:
    design: str
    seed: int
    memory: Memory
    reuse: ReuseDelay
    contention: tuple[Contention, ...]
    unsupported: tuple[str, ...] = ()  # operations the design could not do, and what ran instead
    stop: Stop | None = None  # of the memory workload
    reported: tuple[str, ...] = ()  # warning-class properties reported in the memory workload

    def contention_at(self, ncpus: int, nmms: int) -> Contention:
        return next(c for c in self.contention if (c.ncpus, c.nmms) == (ncpus, nmms))


def _mean(values: list[float] | list[int]) -> float | None:
    return statistics.fmean(values) if values else None
