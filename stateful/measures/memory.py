"""The memory run: memory_workload on one CPU, sampling pages per table and reuse-delays.

memory: pgtable pages per live 2K table, sampled after every operation of the
fixed operation list, the same for every design; the reuse-delay of every
table freed on the way is tracked by `stateful.measures.reuse`.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from attrs import define, field

from designs.base import Design
from stateful import ops
from stateful.kernel.cpu import CPU, Context
from stateful.kernel.memory import Table
from stateful.kernel.mm import MMStruct
from stateful.kernel.world import World
from stateful.measures.harness import _boot_mm
from stateful.measures.results import Memory, Stop, _mean
from stateful.measures.reuse import _ReuseTracker
from stateful.measures.workloads import MEMORY_MMS, Op
from stateful.violations import Violation

# Callbacks can queue more callbacks (a second half waiting for the rcu_head):
# the workload's end runs grace periods until RCU is quiet, at most this many.
SETTLE_GRACE_PERIODS = 20


@define
class _MemoryRun:
    """Runs memory_workload on CPU0, one operation to completion at a time."""

    design_cls: type[Design]
    world: World
    pt: ops.PageTables = field(factory=ops.PageTables)
    mms: list[MMStruct] = field(factory=list)  # creation order, as memory_workload counts them
    tables: list[tuple[MMStruct, Table]] = field(factory=list)  # allocation order
    reuse: _ReuseTracker = field(factory=_ReuseTracker)
    ratios: list[float] = field(factory=list)
    held: list[float] = field(factory=list)
    substituted: int = 0
    names: int = 0
    done: int = 0  # operations of the workload completed, the settling grace periods too

    @property
    def cpu(self) -> CPU:
        return self.world.cpus[0]

    def new_mm(self) -> None:
        self.mms.append(_boot_mm(self.world, self.pt, f"mm{self.names}"))
        self.names += 1

    def step_to_end(self, ctx: Context) -> None:
        w = self.world
        while not ctx.done:
            if w.runnable(ctx):
                w.advance(ctx)
                self.reuse.check(w.steps, self.done)
            elif not w.rcu.try_end_gp():
                # Alone on its CPU, a context can only wait for a grace period
                # (a lock it spins on would have been reported as a deadlock).
                raise RuntimeError(f"{ctx!r} is stuck on {ctx.blocked}")

    def task(self, label: str, gen: Generator[Any, None, Any]) -> Any:
        ctx = self.world.start_task(self.cpu, label, gen)
        self.step_to_end(ctx)
        return ctx.result

    def grace_period(self) -> None:
        self.world.rcu.try_end_gp()
        while self.world.softirq_may_run(self.cpu):
            self.step_to_end(self.world.start_softirq(self.cpu))

    def free(self, kind: str, pick: int) -> None:
        w, pt = self.world, self.pt
        mm, table = self.tables.pop(pick % len(self.tables))
        if kind == "defer" and not self.design_cls.supports_defer:
            kind = "free_tlb"
            self.substituted += 1
        self.reuse.freed(table, w.steps, self.done)
        if kind == "free":
            self.task(f"pte_free({mm}, {table})", ops.free(w, pt, mm, table))
        elif kind == "free_tlb":
            self.task(f"munmap({mm}, {table})", ops.free_tlb(w, pt, mm, table, False))
        else:
            self.task(f"khugepaged({mm}, {table})", ops.defer(w, pt, mm, table))

    def run_op(self, op: Op) -> None:
        w, pt = self.world, self.pt
        if op.kind == "alloc":
            mm = self.mms[(op.mm or 0) % len(self.mms)]
            table = self.task(f"page_table_alloc({mm})", ops.alloc(w, pt, mm))
            self.tables.append((mm, table))
        elif op.kind in ("free", "free_tlb", "defer"):
            if self.tables:
                self.free(op.kind, op.table)
        elif op.kind == "grace_period":
            self.grace_period()
        elif op.kind == "exit_mm":
            mm = self.mms.pop((op.mm or 0) % len(self.mms))
            for table in [t for owner, t in self.tables if owner is mm]:
                self.reuse.freed(table, w.steps, self.done)
            self.tables = [t for t in self.tables if t[0] is not mm]
            self.task(f"exit_mmap({mm})", ops.exit_mm(w, pt, mm, False))
            # The process is gone and another starts: the number of mms stays.
            self.new_mm()
        else:
            raise ValueError(f"unknown operation {op.kind!r}")

    def sample(self) -> None:
        if not self.tables:
            return
        live = self.world.allocator.live.values()
        pages = sum(1 for p in live if p.purpose == "pgtable")
        held = len({id(t.page) for _, t in self.tables})
        self.ratios.append(pages / len(self.tables))
        self.held.append(held / len(self.tables))

    def run(self, workload: tuple[Op, ...]) -> Stop | None:
        for _ in range(MEMORY_MMS):
            self.new_mm()
        try:
            for op in workload:
                self.run_op(op)
                self.done += 1
                self.sample()
            for _ in range(SETTLE_GRACE_PERIODS):
                if not self.world.rcu.pending():
                    break
                self.grace_period()
                self.done += 1
        except Violation as violation:
            return Stop(violation.property, min(self.done, len(workload)), str(violation))
        return None

    def memory(self) -> Memory:
        return Memory(
            mean=_mean(self.ratios),
            peak=max(self.ratios) if self.ratios else None,
            held_mean=_mean(self.held),
            samples=len(self.ratios),
        )
