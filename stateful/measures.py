"""The cost measures: every design run on the same fixed, seeded workloads.

Verdicts say whether a design is correct; these say what it costs.

- memory: pgtable pages per live 2K table, sampled after every operation of
  one fixed operation list (`memory_workload(seed)`), the same for every design;
- reuse-delay: from the start of the operation that frees a 2K table until
  that half could be handed out again (its page went back to the page
  allocator, or it is on a live pgtable_list with its AA, PP and HH bits
  clear), in kernel steps (`World.steps`) and in operations of the workload;
- contention: lock acquisitions that had to spin, per lock class, with 2 and
  4 CPUs on 1 and 4 mms, each CPU running its own seeded stream of operations.

Everything is drawn from `random.Random` seeded with the seed, so the figures
are reproducible: `python benchmarks/measures.py --seed N` prints them.
A violation does not crash a measure: it stops that workload, and the result
says which property stopped it after how many operations.
"""

from __future__ import annotations

import random
import statistics
import textwrap
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from typing import Any

from attrs import define, field

from designs.base import AA, HH, PP, Design
from stateful import ops
from stateful.kernel.cpu import CPU, Context
from stateful.kernel.memory import Table
from stateful.kernel.mm import MMStruct
from stateful.kernel.world import KernelConfig, World
from stateful.violations import PROPERTIES, Deadlock, Violation

COMMAND = "python benchmarks/measures.py"
WIDTH = 100  # of the rendered table
LOCK_WIDTH = 24
NOTE_MESSAGE = 160

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
# Callbacks can queue more callbacks (a second half waiting for the rcu_head):
# the workload's end runs grace periods until RCU is quiet, at most this many.
SETTLE_GRACE_PERIODS = 20

CONTENTION_CONFIGS: tuple[tuple[int, int], ...] = ((2, 1), (2, 4), (4, 1), (4, 4))
CONTENTION_OPS_PER_CPU = 100
CONTENTION_TABLES_PER_MM = 8
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
MAX_TICKS = 500_000  # a livelock guard; the workloads take a few thousand

# The same warnings as the state machine lets the run go on after: a splat is
# not the end of the kernel, and not the end of a measure.
WARNINGS = frozenset(name for name, cls in PROPERTIES.items() if cls.warning)

DEFER_FALLBACK = "pte_free_defer: not offered; ran pte_free_tlb instead"


# --- results -----------------------------------------------------------------


@define(frozen=True)
class Op:
    """One operation of a workload; picks are taken modulo what exists when it runs."""

    kind: str
    mm: int | None = None  # None: the CPU's own mm (contention workload)
    table: int = 0


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


# --- the machine under measure -----------------------------------------------


def _new_world(design_cls: type[Design], ncpus: int) -> World:
    """As stateful.machine builds its World: the design is made inside it."""
    config = KernelConfig(ncpus=ncpus, continue_after=WARNINGS)
    world = World(design=None, config=config)  # type: ignore[arg-type]
    with world.running():
        world.design = design_cls()
    # Nobody reads the diagram of a measure; recording it would cost time.
    world.trace.enabled = False
    return world


def _boot_mm(w: World, pt: ops.PageTables, name: str) -> MMStruct:
    """Create an mm on CPU0's task context, as the machine boots its first mms.

    Non-PGSTE only: a PGSTE mm uses a whole 4K page in every design, so it
    would only dilute the difference the memory measure is about."""
    ctx = w.start_task(w.cpus[0], f"fork: mm_alloc {name}", ops.mm_create(w, pt, name, False))
    w.run(ctx)
    assert ctx.done, f"{ctx!r} did not finish creating {name}"
    return ctx.result


def _grace_period(w: World) -> bool:
    """One grace period, if no reader holds it up. True when one ended."""
    if not w.rcu.in_progress:
        w.rcu.start_gp()
    if not w.rcu.may_end_gp():
        return False
    w.rcu.end_gp()
    return True


def _softirq_may_run(w: World, cpu: CPU) -> bool:
    return w.rcu.has_ready(cpu.id) and cpu.softirq_may_start()


def _reported(w: World) -> tuple[str, ...]:
    return tuple(sorted({r.property for r in w.reports}))


def _mean(values: list[float] | list[int]) -> float | None:
    return statistics.fmean(values) if values else None


# --- memory and reuse-delay --------------------------------------------------


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


def _usable(table: Table) -> bool:
    """Could page_table_alloc hand this freed table out again?"""
    page = table.page
    if page.freed:
        return True  # back in the page allocator
    head = page.list_of
    # Any list a page table page is on is a list page_table_alloc takes from:
    # mm->context.pgtable_list, or a design's own (a static one has no
    # container). A list inside a freed mm is gone with it.
    if head is None or (head.container is not None and head.container.freed):
        return False
    return all(page.refbyte & ((AA | PP | HH) << half) == 0 for half in table.halves)


@define
class _ReuseTracker:
    # (table, step its free began, operations done before it)
    pending: list[tuple[Table, int, int]] = field(factory=list)
    step_delays: list[int] = field(factory=list)
    op_delays: list[int] = field(factory=list)
    frees: int = 0

    def freed(self, table: Table, step: int, op: int) -> None:
        self.frees += 1
        self.pending.append((table, step, op))

    def check(self, step: int, op: int) -> None:
        """After every step: a table can be reused for a moment and taken again."""
        if not self.pending:
            return
        still = []
        for entry in self.pending:
            table, began, op_began = entry
            if _usable(table):
                self.step_delays.append(step - began)
                self.op_delays.append(op - op_began)
            else:
                still.append(entry)
        self.pending = still

    def result(self) -> ReuseDelay:
        return ReuseDelay(
            frees=self.frees,
            mean=_mean(self.step_delays),
            max=max(self.step_delays, default=None),
            mean_ops=_mean(self.op_delays),
            max_ops=max(self.op_delays, default=None),
            never=len(self.pending),
        )


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
            elif not _grace_period(w):
                # Alone on its CPU, a context can only wait for a grace period
                # (a lock it spins on would have been reported as a deadlock).
                raise RuntimeError(f"{ctx!r} is stuck on {ctx.blocked}")

    def task(self, label: str, gen: Generator[Any, None, Any]) -> Any:
        ctx = self.world.start_task(self.cpu, label, gen)
        self.step_to_end(ctx)
        return ctx.result

    def grace_period(self) -> None:
        _grace_period(self.world)
        while _softirq_may_run(self.world, self.cpu):
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


# --- contention --------------------------------------------------------------


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
            if _softirq_may_run(w, cpu):
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


# --- the measure -------------------------------------------------------------


def measure(design_cls: type[Design], seed: int = 0) -> Measures:
    """Run design_cls through the memory/reuse workload and the contention workloads."""
    mem = _MemoryRun(design_cls, _new_world(design_cls, ncpus=1))
    stop = mem.run(memory_workload(seed))
    contention = []
    substituted = 0
    for ncpus, nmms in CONTENTION_CONFIGS:
        result, n = _contention(design_cls, seed, ncpus, nmms)
        contention.append(result)
        substituted += n
    unsupported = ()
    if mem.substituted or substituted:
        unsupported = (
            f"{DEFER_FALLBACK} ({mem.substituted} times in the memory workload, "
            f"{substituted} in the contention workloads)",
        )
    return Measures(
        design=design_cls.name,
        seed=seed,
        memory=mem.memory(),
        reuse=mem.reuse.result(),
        contention=tuple(contention),
        unsupported=unsupported,
        stop=stop,
        reported=_reported(mem.world),
    )


# --- the table ---------------------------------------------------------------


def _fmt(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _cell(c: Contention, lock: str) -> str:
    mark = "*" if c.stop else ""
    return f"{c.spins.get(lock, 0)}/{c.acquisitions.get(lock, 0)}{mark}"


def _columns(rows: list[list[str]], left: int = 1) -> list[str]:
    """Aligned columns: the first `left` columns to the left, the figures to the right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def render_measures(rows: Mapping[str, Measures], command: str | None = None) -> str:
    """The measures of each design, at most WIDTH columns, after the command that makes them."""
    seeds = sorted({m.seed for m in rows.values()})
    if len(seeds) > 1:
        raise ValueError(f"rows measured with different seeds {seeds}: one table, one seed")
    seed = seeds[0] if seeds else 0
    lines = [
        f"$ {command or f'{COMMAND} --seed {seed}'}",
        f"memory and reuse-delay: {MEMORY_OPS} ops run one after the other on 1 CPU,"
        f" {MEMORY_MMS} mms, no PGSTE",
        "  mem, peak  pgtable pages per live 2K table (held: only pages holding a live table)",
        "  steps, ops from the start of a free until the table can be handed out again,",
        "             in kernel steps and in ops; never: still unusable at the end, RCU quiet",
        "",
    ]
    memory = [["design", "mem", "peak", "held", "steps", "max", "ops", "max", "never"]]
    for name, m in rows.items():
        star = "*" if m.stop else ""
        memory.append(
            [
                name,
                _fmt(m.memory.mean, ".2f") + star,
                _fmt(m.memory.peak, ".2f") + star,
                _fmt(m.memory.held_mean, ".2f") + star,
                _fmt(m.reuse.mean, ".1f") + star,
                _fmt(m.reuse.max, "d") + star,
                _fmt(m.reuse.mean_ops, ".2f") + star,
                _fmt(m.reuse.max_ops, "d") + star,
                str(m.reuse.never) + star,
            ]
        )
    lines += _columns(memory)
    lines += [
        "",
        "contention: lock acquisitions that spun / all acquisitions, per lock class, with",
        f"  CxM = C CPUs on M mms, each CPU running {CONTENTION_OPS_PER_CPU} ops mostly on"
        " its own mm",
        "",
    ]
    contention = [["design", "lock", *(f"{n}x{m}" for n, m in CONTENTION_CONFIGS)]]
    for name, m in rows.items():
        locks = sorted({lock for c in m.contention for lock in c.acquisitions}) or ["-"]
        for i, lock in enumerate(locks):
            contention.append(
                ["" if i else name, lock[:LOCK_WIDTH], *(_cell(c, lock) for c in m.contention)]
            )
    lines += _columns(contention, left=2)
    notes = [note for name, m in rows.items() for note in _notes(name, m)]
    if notes:
        lines += ["", "* stopped by a violation: the figures are up to that point"]
        for note in notes:
            lines += textwrap.wrap(note, WIDTH, subsequent_indent="    ", break_on_hyphens=False)
    return "\n".join(lines)


def _notes(name: str, m: Measures) -> list[str]:
    def short(message: str) -> str:
        return textwrap.shorten(message, NOTE_MESSAGE, placeholder=" ...")

    notes = [f"{name}: {u}" for u in m.unsupported]
    if m.stop:
        notes.append(f"{name}: memory workload {m.stop}: {short(m.stop.message)}")
    # A design's bug tends to stop every configuration the same way: one line each.
    stopped: dict[str, list[Contention]] = {}
    for c in m.contention:
        if c.stop:
            stopped.setdefault(c.stop.property, []).append(c)
    for prop, cs in stopped.items():
        where = ", ".join(
            f"{c.ncpus}x{c.nmms} after {_count_ops(c.stop.after_ops)}" for c in cs if c.stop
        )
        first = cs[0].stop.message if cs[0].stop else ""
        notes.append(f"{name}: contention stopped by {prop}: {where}; the first: {short(first)}")
    props = sorted(set(m.reported).union(*(c.reported for c in m.contention)))
    for prop in props:
        places = ["memory"] if prop in m.reported else []
        places += [f"{c.ncpus}x{c.nmms}" for c in m.contention if prop in c.reported]
        notes.append(f"{name}: {prop} reported, and the run went on, in: {', '.join(places)}")
    return notes
