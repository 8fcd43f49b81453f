"""The contention run: lock acquisitions that had to spin, per lock class.

With 2 and 4 CPUs on 1 and 4 mms (CONTENTION_CONFIGS), each CPU running its
own seeded stream of operations, interleaved one step at a time by a seeded
scheduler.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Generator
from typing import Any

from attrs import define, field

from designs.base import Design
from stateful import ops
from stateful.kernel.cpu import CPU, Context
from stateful.kernel.memory import Table
from stateful.kernel.mm import MMStruct
from stateful.kernel.world import World
from stateful.measures.harness import _boot_mm, _new_world, _reported
from stateful.measures.results import Contention, Stop
from stateful.measures.workloads import Op, contention_streams
from stateful.violations import Deadlock, Violation

CONTENTION_TABLES_PER_MM = 8
MAX_TICKS = 500_000  # a livelock guard; the workloads take a few thousand


@define
class _ContentionRun:
    """N CPUs, each running its own stream over its own mm, one step at a time.

    CPU i works on mm i % M, as processes on different CPUs do: with per-mm
    locks they meet only when they share an mm, with a global lock always.
    The scheduler advances one runnable context by one step, draws softirqs
    where callbacks are ready and bh is enabled, and ends grace periods when
    they may end, all by one seeded draw among what can happen next."""

    design_cls: type[Design]
    world: World
    rng: random.Random
    streams: list[list[Op]]
    pt: ops.PageTables = field(factory=ops.PageTables)
    mms: list[MMStruct] = field(factory=list)
    free: dict[MMStruct, list[Table]] = field(factory=dict)  # tables no operation holds
    pending: dict[Context, Callable[[Any], None]] = field(factory=dict)  # what to do at the end
    done: int = 0
    substituted: int = 0

    def start(self, cpu: CPU) -> Context:
        w, pt = self.world, self.pt
        op = self.streams[cpu.id].pop(0)
        mm = self.mms[cpu.id % len(self.mms) if op.mm is None else op.mm % len(self.mms)]
        tables = self.free[mm]
        kind = op.kind
        # The stream says what a CPU wants; what exists decides what it can do.
        if kind == "alloc" and len(tables) >= CONTENTION_TABLES_PER_MM:
            kind = "free"
        elif kind in ("free", "free_tlb", "defer") and not tables:
            kind = "alloc"
        if kind == "defer" and not self.design_cls.supports_defer:
            kind = "free_tlb"
            self.substituted += 1
        if kind == "alloc":
            gen: Generator[Any, None, Any] = ops.alloc(w, pt, mm)
            ctx = w.start_task(cpu, f"page_table_alloc({mm})", gen)
            self.pending[ctx] = lambda table: tables.append(table)
            return ctx
        if kind == "flush":
            return w.start_task(cpu, f"__tlb_flush_mm_lazy({mm})", ops.flush(w, pt, mm))
        table = tables.pop(op.table % len(tables))
        if kind == "free":
            gen = ops.free(w, pt, mm, table)
        elif kind == "free_tlb":
            gen = ops.free_tlb(w, pt, mm, table, False)
        else:
            gen = ops.defer(w, pt, mm, table)
        return w.start_task(cpu, f"{kind}({mm}, {table})", gen)

    def step(self, ctx: Context) -> None:
        self.world.advance(ctx)
        if ctx.done and ctx.kind == "task":
            self.done += 1
            then = self.pending.pop(ctx, None)
            if then is not None:
                then(ctx.result)

    def events(self) -> list[tuple[str, CPU | None]]:
        w = self.world
        events: list[tuple[str, CPU | None]] = []
        for cpu in w.cpus:
            top = cpu.top
            if top is None:
                if self.streams[cpu.id]:
                    events.append(("start", cpu))
            elif w.runnable(top):
                events.append(("step", cpu))
            if w.softirq_may_run(cpu):
                events.append(("softirq", cpu))
        if w.rcu.needs_grace_period() or any(
            c.blocked is not None and isinstance(c.blocked.on, int) for c in self.contexts()
        ):
            if not w.rcu.in_progress:
                w.rcu.start_gp()
            if w.rcu.may_end_gp():
                events.append(("grace_period", None))
        return events

    def contexts(self) -> list[Context]:
        return [c for cpu in self.world.cpus for c in (cpu.task, cpu.softirq) if c and not c.done]

    def run(self) -> Stop | None:
        w = self.world
        try:
            for _ in range(MAX_TICKS):
                events = self.events()
                if not events:
                    stuck = self.contexts()
                    if stuck:
                        raise Deadlock(
                            "no context can run: "
                            + "; ".join(f"{c!r} spins in {c.blocked}" for c in stuck)
                        )
                    return None
                what, cpu = self.rng.choice(events)
                if what == "grace_period":
                    w.rcu.end_gp()
                elif what == "softirq":
                    assert cpu is not None
                    w.start_softirq(cpu)
                elif what == "start":
                    assert cpu is not None
                    self.step(self.start(cpu))
                else:
                    assert cpu is not None and cpu.top is not None
                    self.step(cpu.top)
        except Violation as violation:
            return Stop(violation.property, self.done, str(violation))
        raise RuntimeError(f"contention workload did not end within {MAX_TICKS} ticks")


def _contention(
    design_cls: type[Design], seed: int, ncpus: int, nmms: int
) -> tuple[Contention, int]:
    w = _new_world(design_cls, ncpus)
    run = _ContentionRun(
        design_cls,
        w,
        # The scheduler's draws are separate from the streams', so that every
        # design gets the same streams whatever the interleaving did.
        random.Random(seed * 1000 + ncpus * 10 + nmms + 500),
        [list(s) for s in contention_streams(seed, ncpus, nmms)],
    )
    for i in range(nmms):
        mm = _boot_mm(w, run.pt, f"mm{i}")
        run.mms.append(mm)
        run.free[mm] = []
    # Only the workload counts, not the booting of its mms.
    spins0, acquisitions0 = Counter(w.contention), Counter(w.acquisitions)
    stop = run.run()
    spins = Counter(w.contention)
    spins.subtract(spins0)
    acquisitions = Counter(w.acquisitions)
    acquisitions.subtract(acquisitions0)
    result = Contention(
        ncpus=ncpus,
        nmms=nmms,
        ops=run.done,
        spins={k: v for k, v in sorted(spins.items()) if v or acquisitions[k]},
        acquisitions={k: v for k, v in sorted(acquisitions.items()) if v},
        stop=stop,
        reported=_reported(w),
    )
    return result, run.substituted
