"""The World: one simulated machine, and the scheduler that steps it.

Everything the checks need to see lives here: CPUs and their contexts, the
page allocator, RCU, lockdep's usage table, who owns which page table, and
which readers saw a table that was handed to pte_free_defer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import CPU, Blocked, Context, Steps
from stateful.kernel.locks import LockUsage, SpinLock, check_deadlock
from stateful.kernel.memory import KObject, Page, PageAllocator, Table
from stateful.kernel.mm import MMStruct
from stateful.kernel.rcu import Rcu, head_deactivate
from stateful.kernel.rwsem import RwSemaphore
from stateful.trace import Trace
from stateful.violations import (
    BadBits,
    DoubleAlloc,
    EarlyReuse,
    UseAfterFree,
    Violation,
)

if TYPE_CHECKING:
    from designs.base import Design

# How the trace names the hooks of the contract: the kernel functions.
KERNEL_NAMES = {
    "tlb_remove_table": "__tlb_remove_table",
    "tlb_flush_mm_lazy": "__tlb_flush_mm_lazy",
}


@define(frozen=True)
class KernelConfig:
    ncpus: int = 2
    prove_locking: bool = True  # CONFIG_PROVE_LOCKING
    # Properties whose reports are recorded and the run goes on, as the kernel
    # goes on after a WARN_ON_ONCE or a lockdep splat.
    continue_after: frozenset[str] = frozenset()


@define(eq=False)
class World:
    design: Design
    config: KernelConfig = KernelConfig()
    cpus: list[CPU] = field(init=False)
    allocator: PageAllocator = field(factory=PageAllocator)
    rcu: Rcu = field(factory=Rcu)
    trace: Trace = field(factory=Trace)
    lock_usage: dict[str, LockUsage] = field(factory=dict)
    # debug_locks: lockdep runs until its first report, or until a Bad page
    # state taints the kernel (LOCKDEP_NOW_UNRELIABLE); then it checks nothing.
    debug_locks: bool = True
    contention: Counter[str] = field(factory=Counter)
    acquisitions: Counter[str] = field(factory=Counter)
    mms: list[MMStruct] = field(factory=list)
    mm_cachep_free: list[MMStruct] = field(factory=list)  # freed mms, last freed last
    current: Context | None = None
    steps: int = 0
    owned: dict[tuple[int, int], tuple[Table, str]] = field(factory=dict)
    deferred: dict[tuple[int, int], tuple[Table, set[Context]]] = field(factory=dict)
    reports: list[Violation] = field(factory=list)
    # Called after each step `run` takes, and where it stops: the exhaustive
    # search reads there where an interrupt would fire (None: nothing reads).
    step_probe: Callable[[Context], None] | None = None
    # Called after each step `run` takes against a budget, where a smaller
    # budget would have stopped it, with the state as that stop leaves it
    # (and by the machine where a pause at an interrupt stops a call): the
    # exhaustive search reads there the state of every shorter pause of the
    # call it is running (None: nothing reads).
    pause_probe: Callable[[Context, int, int], None] | None = None

    def __attrs_post_init__(self) -> None:
        self.cpus = [CPU(i) for i in range(self.config.ncpus)]

    @contextmanager
    def cpus_numbered(self, order: Sequence[CPU]) -> Iterator[None]:
        """The CPUs numbered 0, 1, ... in `order` while the block runs, then as
        before. A CPU's number is a name: the kernel does nothing by it but
        find the CPU's own queue, so two states that differ only in how their
        CPUs are numbered behave alike (the exhaustive search's CPU symmetry,
        stateful/symmetry.py). Only what is read in the block sees the new
        numbers; the trace keeps the old."""
        before, queues = list(self.cpus), self.rcu.queues
        ids = [cpu.id for cpu in order]
        self.cpus = list(order)
        for n, cpu in enumerate(self.cpus):
            cpu.id = n
        self.rcu.renumber({old: n for n, old in enumerate(ids)})
        try:
            yield
        finally:
            for cpu, old in zip(order, ids, strict=True):
                cpu.id = old
            self.cpus, self.rcu.queues = before, queues

    @classmethod
    def for_design(cls, design_cls: type[Design], config: KernelConfig) -> World:
        """A machine running design_cls, made inside it: a design may create
        kernel objects (a kmem cache, a static lock) when it is made."""
        world = cls(design=None, config=config)  # type: ignore[arg-type]
        with world.running():
            world.design = design_cls()
        return world

    # --- running code -----------------------------------------------------

    @contextmanager
    def running(self, ctx: Context | None = None) -> Iterator[None]:
        previous_world = current.set_world(self)
        previous_ctx, self.current = self.current, ctx
        try:
            yield
        finally:
            self.current = previous_ctx
            current.set_world(previous_world)

    def start_task(self, cpu: CPU, label: str, gen: Generator[Any, None, Any]) -> Context:
        assert cpu.idle, f"CPU{cpu.id} is not idle"
        ctx = Context(cpu=cpu, kind="task", label=label, gen=gen)
        cpu.task = ctx
        return ctx

    def start_softirq(self, cpu: CPU) -> Context:
        assert cpu.softirq_may_start(), f"CPU{cpu.id}: softirq with bh disabled"
        ctx = Context(cpu=cpu, kind="softirq", label="rcu_core", gen=self._rcu_core(cpu))
        cpu.softirq = ctx
        self.rcu.note_context(ctx, quiescent=False)
        return ctx

    def _rcu_core(self, cpu: CPU) -> Steps[None]:
        """RCU_SOFTIRQ: invoke the callbacks that are ready on this CPU, in order."""
        while (cb := self.rcu.pop_ready(cpu.id)) is not None:
            head_deactivate(cb.head)
            ctx = current.context()
            # Under its <softirq> marker the callback reads as what it is, the
            # function call_rcu() queued earlier: pte_free_now1(P0->rcu_head).
            self.trace.add(cpu.id, True, ctx.depth, cb.label, "enter")
            ctx.depth += 1
            yield from cb.fn(cb.head)
            ctx.depth -= 1

    def end_grace_period(self) -> bool:
        """End the grace period a queued callback waits for, if no reader holds
        it up. Every end is a line of the race diagram, the drain's included:
        a callback that runs must show the grace period it waited for."""
        if not (self.rcu.needs_grace_period() and self.rcu.try_end_gp()):
            return False
        self.trace.add(0, False, 0, f"grace period {self.rcu.completed} ends", "global")
        return True

    def softirq_may_run(self, cpu: CPU) -> bool:
        """Callbacks are ready on cpu and bh is enabled where a softirq would land."""
        return self.rcu.has_ready(cpu.id) and cpu.softirq_may_start()

    def runnable(self, ctx: Context) -> bool:
        if ctx.done or ctx.cpu.top is not ctx:
            return False
        if ctx.blocked is None:
            return True
        on = ctx.blocked.on
        if isinstance(on, SpinLock):
            return on.holder is None
        if isinstance(on, RwSemaphore):
            return on.granted(ctx)  # woken: the releaser handed it the lock
        return self.rcu.completed >= on

    def advance(self, ctx: Context) -> bool:
        """One step of ctx. False when it is (still) spinning."""
        assert self.runnable(ctx), f"{ctx!r} cannot run"
        return self._step(ctx)

    def _step(self, ctx: Context) -> bool:
        """advance(ctx), for a caller that has just checked that ctx is runnable."""
        # running(ctx), spelled out: this is the innermost loop of every run,
        # and the context manager cost an eighth of an exhaustive search.
        previous_world = current.set_world(self)
        previous_ctx, self.current = self.current, ctx
        try:
            try:
                yielded = ctx.gen.send(None)
            except StopIteration as stop:
                self._finish(ctx, stop.value)
                return True
            if isinstance(yielded, Blocked):
                ctx.blocked = yielded
                self.rcu.note_context(ctx, ctx.quiescent)
                if isinstance(yielded.on, SpinLock):
                    check_deadlock(ctx, yielded.on)
                return False
            ctx.blocked = None
            self.rcu.note_context(ctx, ctx.quiescent)
            return True
        finally:
            self.current = previous_ctx
            current.set_world(previous_world)

    def _finish(self, ctx: Context, value: Any) -> None:
        ctx.done, ctx.result, ctx.blocked = True, value, None
        self.rcu.note_context(ctx, quiescent=True)
        if ctx.held or ctx.rw_held:
            raise RuntimeError(f"{ctx!r} returned holding {[*ctx.held, *ctx.rw_held]}")
        if ctx.rcu_nesting:
            raise RuntimeError(f"{ctx!r} returned inside rcu_read_lock()")
        if ctx.bh_disabled and ctx.kind == "task":
            raise RuntimeError(f"{ctx!r} returned with bh disabled")
        if ctx.cpu.softirq is ctx:
            ctx.cpu.softirq = None
        elif ctx.cpu.task is ctx:
            ctx.cpu.task = None

    def run(self, ctx: Context, budget: int = 0) -> int:
        """Run ctx until it ends, spins, or (budget > 0) has taken `budget` steps.
        Returns the steps taken."""
        taken = 0
        ctx.left_at_interrupt = False
        probe = self.step_probe
        while not ctx.done and self.runnable(ctx):
            if not self._step(ctx):
                break
            taken += 1
            if probe is not None:
                probe(ctx)
            if budget:
                # As a stop here leaves it: what the pause probe reads, and
                # what the stop keeps (the loop's end sets it otherwise).
                ctx.left_runnable = not ctx.done
                if self.pause_probe is not None:
                    self.pause_probe(ctx, taken, budget)
                if taken >= budget:
                    return taken
        ctx.left_runnable = False
        if probe is not None:
            probe(ctx)
        return taken

    def run_to_end(self, cpu: CPU, label: str, gen: Generator[Any, None, Any]) -> Any:
        """Run gen as a task on the idle cpu to its end; return what it returned."""
        ctx = self.start_task(cpu, label, gen)
        self.run(ctx)
        assert ctx.done, f"{ctx!r} did not finish: blocked on {ctx.blocked}"
        return ctx.result

    # --- hooks and trace --------------------------------------------------

    def hook(self, name: str, *args: Any) -> Steps[Any]:
        shown = ", ".join(repr(a) for a in args)
        call = f"{KERNEL_NAMES.get(name, name)}({shown})"
        return (yield from self.traced(call, getattr(self.design, name)(*args)))

    def traced(self, call: str, body: Steps[Any]) -> Steps[Any]:
        """Run body as a call shown in the trace: its steps indented below it."""
        ctx = current.context()
        self.trace.add(ctx.cpu.id, ctx.in_softirq, ctx.depth, call, "enter")
        ctx.depth += 1
        try:
            result = yield from body
        finally:
            ctx.depth -= 1
        return result

    def trace_step(self, text: str) -> None:
        self.steps += 1
        ctx = self.current
        if ctx is None:
            return
        self.trace.add(ctx.cpu.id, ctx.in_softirq, ctx.depth, text)

    def trace_note(self, text: str) -> None:
        """An annotation of the step just taken (a list's new content): shown
        under it, and not a step: `steps` counts what the kernel did."""
        ctx = self.current
        if ctx is not None:
            self.trace.add(ctx.cpu.id, ctx.in_softirq, ctx.depth, text, "note")

    def trace_ipi(self, text: str) -> None:
        """The current CPU's IPI runs `text` on every other CPU: marked in each
        of their columns. Not a step: the sender's step is the IPI."""
        ctx = self.current
        for cpu in self.cpus:
            if ctx is None or cpu is not ctx.cpu:
                self.trace.add(cpu.id, False, 0, text, "ipi")

    def debug_locks_off(self) -> None:
        self.debug_locks = False

    def report(self, cls: type[Violation], message: str, where: str = "") -> None:
        """Raise (or record) a violation. `where` is the access that broke,
        for the diagram, when the primitive did not get to show its step."""
        ctx = self.current
        cpu, softirq, depth = (ctx.cpu.id, ctx.in_softirq, ctx.depth) if ctx else (0, False, 0)
        self.trace.add(cpu, softirq, depth, message, "violation", cls.property, where)
        exc = cls(message)
        if cls.property in self.config.continue_after:
            self.reports.append(exc)
            return
        raise exc

    def mm_alloc(self, name: str, pgste: bool) -> MMStruct:
        """A new mm; like SLUB, mm_cachep hands out the most recently freed object first."""
        mm = MMStruct.create(name, pgste)
        if self.mm_cachep_free:
            self.mm_cachep_free.pop().reused_by = name
        self.mms.append(mm)
        return mm

    # --- the checks -------------------------------------------------------

    def access(self, obj: KObject, what: str, contents: bool = False) -> None:
        """An access to obj by the running context. For a page, `contents`
        says it touches the page's memory (a table's entries), which KASAN
        poisons when the page is freed; otherwise it touches its struct page
        (_refcount, flags, lru, rcu_head, pt_mm), which KASAN never poisons."""
        if not obj.freed:
            return
        ctx = self.current
        if isinstance(obj, Page) and not contents:
            # The use-after-free is the design's all the same: the page
            # allocator owns the page, and links it through the same lru.
            self.report(
                UseAfterFree,
                f"use-after-free of struct page in {what} by {ctx!r}: {obj} was freed by "
                f"{obj.freed_where}, and the page allocator owns it (no KASAN report: "
                "struct page is never poisoned, so the kernel goes on here, silently)",
                where=what,
            )
            return
        is_mm = isinstance(obj, MMStruct)
        kind = "slab-use-after-free" if is_mm else "use-after-free"
        now = f"; its memory now holds {obj.reused_by}" if is_mm and obj.reused_by else ""
        self.report(
            UseAfterFree,
            f"BUG: KASAN: {kind} in {what} by {ctx!r}: {obj} was freed by {obj.freed_where}{now}",
            where=what,
        )

    def check_bits(self, page: Page) -> None:
        problem = self.design.bad_bits(page.refbyte)
        if problem:
            self.report(
                BadBits,
                f"{page}->_refcount upper byte {page.refbyte:#04x}, impossible by the design's "
                f"own rules: {problem} (the kernel checks nothing here)",
            )

    # --- page-table ownership and pte_free_defer --------------------------

    @staticmethod
    def _keys(table: Table) -> list[tuple[int, int]]:
        return [(id(table.page), half) for half in table.halves]

    def claim_table(self, table: Table, owner: str) -> None:
        """page_table_alloc returned `table` to `owner`."""
        self.access(table.page, f"page_table_alloc() -> {table}", contents=True)
        for key in self._keys(table):
            if key in self.owned:
                held, by = self.owned[key]
                self.report(
                    DoubleAlloc,
                    f"page_table_alloc() handed {table} to {owner}, but {held} is still "
                    f"in use by {by}",
                )
            self._check_early_reuse(key, f"page_table_alloc() hands it to {owner}")
        for key in self._keys(table):
            self.owned[key] = (table, owner)

    def release_table(self, table: Table) -> None:
        """The owner gives the table up: page_table_free and friends begin."""
        for key in self._keys(table):
            self.owned.pop(key, None)

    def defer_table(self, table: Table) -> None:
        witnesses = {r for r in self.rcu.readers if table in r.seen_tables}
        for key in self._keys(table):
            self.deferred[key] = (table, set(witnesses))

    def reader_left(self, ctx: Context) -> None:
        for _, witnesses in self.deferred.values():
            witnesses.discard(ctx)
        ctx.seen_tables.clear()

    def _check_early_reuse(self, key: tuple[int, int], what: str) -> None:
        entry = self.deferred.pop(key, None)
        if entry is None:
            return
        table, witnesses = entry
        if witnesses:
            readers = ", ".join(sorted(repr(r) for r in witnesses))
            self.report(
                EarlyReuse,
                f"{table} was passed to pte_free_defer() and {what} while RCU reader "
                f"{readers}, which saw it before, is still inside rcu_read_lock()",
            )

    def before_page_free(self, page: Page) -> None:
        for half in (0, 1):
            self._check_early_reuse((id(page), half), "its page is freed")
