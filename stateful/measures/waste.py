"""The memory-waste run: one design through one waste workload, pages per live 2K table over time.

Built on the memory run (memory.py): the same World, the same one-CPU
operations run to completion, the same sample (pgtable pages the page
allocator holds, per live table), taken after every operation. Two
operations are added for forkexit: `fork` (a new mm) and `exit` (the last
mmput of a child, with no successor). After the last operation, grace
periods run until RCU is quiet, and one more sample is the end: what the
workload leaves allocated once nothing is pending.
"""

from __future__ import annotations

import statistics

from attrs import define

from designs.base import Design
from stateful import ops
from stateful.measures.harness import _new_world, _reported
from stateful.measures.memory import SETTLE_GRACE_PERIODS, _MemoryRun
from stateful.measures.results import Stop
from stateful.measures.waste_workloads import WASTE_WORKLOADS, Op, Workload
from stateful.violations import Violation

# The designs the issue compares: upstream-6.4 (no pte_free_defer: it runs
# munmap instead) as the baseline of re-adding; the designs with
# pte_free_defer the thread carried to a patch or upstream; and
# global-lock-intended, the one that re-adds a deferred half (v2 with the
# `mask >>= 24` its pte_free_half lacks, so without gerald-v2's and
# typesafe-rcu's leak, which their figures include).
WASTE_DESIGNS = (
    "upstream-6.4",
    "global-lock-intended",
    "merged-6.6",
    "gerald-v2",
    "typesafe-rcu",
    "no-readd",
    "full-page-6.8",
)


@define(frozen=True)
class WasteSeries:
    """pgtable pages per live 2K table after each operation (None: no table live)."""

    design: str
    workload: str
    seed: int
    ratios: tuple[float | None, ...]
    end: float | None  # after the last operation and the settling grace periods
    substituted: int  # pte_free_defer run as munmap: the design has none
    stop: Stop | None = None
    reported: tuple[str, ...] = ()  # warning-class properties reported on the way

    @property
    def values(self) -> list[float]:
        return [r for r in self.ratios if r is not None]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def peak(self) -> float | None:
        return max(self.values, default=None)

    @property
    def used(self) -> float | None:
        """The share of the 2K halves of the pages held that hold a live
        table, over the run: 1.0 packs two tables a page; 0.5 is one 4K page
        per table, "only half of the pgtable memory it allocates"."""
        return None if self.mean is None else 1 / (2 * self.mean)


@define
class _WasteRun(_MemoryRun):
    """The memory run, with fork and exit, sampling into a time series."""

    series: list[float | None] | None = None

    def run_op(self, op: Op) -> None:
        if op.kind == "fork":
            self.new_mm()
        elif op.kind == "exit":
            mm = self.mms.pop((op.mm or 0) % len(self.mms))
            self.tables = [t for t in self.tables if t[0] is not mm]
            self.task(f"exit_mmap({mm})", ops.exit_mm(self.world, self.pt, mm, False))
        else:
            super().run_op(op)

    def ratio(self) -> float | None:
        if not self.tables:
            return None
        live = self.world.allocator.live.values()
        return sum(1 for p in live if p.purpose == "pgtable") / len(self.tables)

    def run_workload(self, workload: Workload, seed: int) -> tuple[list[float | None], Stop | None]:
        ratios: list[float | None] = []
        for _ in range(workload.mms):
            self.new_mm()
        setup, operations = workload.ops(seed)
        try:
            for op in setup:
                self.run_op(op)
            for op in operations:
                self.run_op(op)
                self.done += 1
                ratios.append(self.ratio())
            for _ in range(SETTLE_GRACE_PERIODS):
                if not self.world.rcu.pending():
                    break
                self.grace_period()
        except Violation as violation:
            return ratios, Stop(violation.property, self.done, str(violation))
        return ratios, None


def measure_waste(design_cls: type[Design], workload: str, seed: int = 0) -> WasteSeries:
    """Run design_cls through the named waste workload (a key of WASTE_WORKLOADS)."""
    if workload not in WASTE_WORKLOADS:
        raise ValueError(
            f"unknown workload {workload!r}; valid: {', '.join(sorted(WASTE_WORKLOADS))}"
        )
    run = _WasteRun(design_cls, _new_world(design_cls, ncpus=1))
    ratios, stop = run.run_workload(WASTE_WORKLOADS[workload], seed)
    return WasteSeries(
        design=design_cls.name,
        workload=workload,
        seed=seed,
        ratios=tuple(ratios),
        end=None if stop else run.ratio(),
        substituted=run.substituted,
        stop=stop,
        reported=_reported(run.world),
    )


def measure_wastes(
    designs: dict[str, type[Design]], workloads: list[str] | None = None, seed: int = 0
) -> list[WasteSeries]:
    """Every design (name -> class, in the order given) through every workload, workload first."""
    return [
        measure_waste(cls, workload, seed)
        for workload in (workloads or list(WASTE_WORKLOADS))
        for cls in designs.values()
    ]
