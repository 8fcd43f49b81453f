"""RCU: read-side sections, grace periods, call_rcu and its callbacks.

A grace period starts, snapshots the readers inside at that moment, and can
end only once all of them have left; readers that start later do not hold
it up. A callback waits for a grace period that started after it was queued.
Callbacks run in softirq on the CPU that queued them, in queue order; there
is no ordering across CPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Blocked, Context, Steps
from stateful.kernel.lists import Lru
from stateful.kernel.memory import KObject, PageRcuHead
from stateful.violations import ListCorruption, RcuHeadReuse


@define(eq=False)
class RcuHead:
    """A stand-alone rcu_head, as in the mmu_gather batch."""

    name: str
    queued: bool = False
    container: KObject | None = None

    def __repr__(self) -> str:
        return self.name


Head = RcuHead | PageRcuHead
Callback = Callable[[Any], Generator[Any, None, None]]


@define(eq=False)
class RcuCallback:
    head: Head
    fn: Callback
    target: int  # ready once this many grace periods have completed
    label: str


@define
class Rcu:
    completed: int = 0
    in_progress: bool = False
    # Read-side sections, not contexts: a reader that leaves and comes back
    # is a new section, which the grace period in progress does not wait for.
    readers: dict[Context, int] = field(factory=dict)  # context -> its current section
    # Since the RCU flavours were consolidated (v4.20), a grace period also
    # waits for code that runs with bh or preemption disabled: a softirq (so
    # a running RCU callback), a spin_lock_bh section, any spinlock held or
    # spun on. The World keeps this up to date after every step.
    implicit: dict[Context, int] = field(factory=dict)  # context -> its current section
    waiting_on: set[tuple[Context, int]] = field(factory=set)  # sections the GP waits for
    sections: int = 0
    queues: dict[int, list[RcuCallback]] = field(factory=dict)

    def renumber(self, number: dict[int, int]) -> None:
        """CPU n's queue becomes CPU number[n]'s. The queues are then keyed in
        order of number, and an empty one is no queue (a CPU whose callbacks
        all ran behaves as one that never had any)."""
        self.queues = dict(sorted((number[n], q) for n, q in self.queues.items() if q))

    def next_target(self) -> int:
        return self.completed + (2 if self.in_progress else 1)

    def pending(self) -> list[RcuCallback]:
        return [cb for q in self.queues.values() for cb in q]

    def has_ready(self, cpu: int) -> bool:
        q = self.queues.get(cpu, [])
        return bool(q) and q[0].target <= self.completed

    def pop_ready(self, cpu: int) -> RcuCallback | None:
        return self.queues[cpu].pop(0) if self.has_ready(cpu) else None

    def needs_grace_period(self) -> bool:
        return self.in_progress or any(cb.target > self.completed for cb in self.pending())

    def start_gp(self) -> None:
        assert not self.in_progress
        self.in_progress = True
        self.waiting_on = self._sections()

    def _sections(self) -> set[tuple[Context, int]]:
        return set(self.readers.items()) | set(self.implicit.items())

    def note_context(self, ctx: Context, quiescent: bool) -> None:
        """After a step of ctx: enter or leave its implicit read-side section."""
        if quiescent:
            self.implicit.pop(ctx, None)
        elif ctx not in self.implicit:
            self.sections += 1
            self.implicit[ctx] = self.sections

    def may_end_gp(self) -> bool:
        return self.in_progress and not (self.waiting_on & self._sections())

    def end_gp(self) -> None:
        assert self.may_end_gp()
        self.in_progress = False
        self.waiting_on = set()
        self.completed += 1

    def try_end_gp(self) -> bool:
        """Start a grace period if none is in progress, and end it if no reader
        holds it up. True when one ended."""
        if not self.in_progress:
            self.start_gp()
        if not self.may_end_gp():
            return False
        self.end_gp()
        return True


def rcu_read_lock() -> Steps[None]:
    w = current.world()
    ctx = current.context()
    ctx.rcu_nesting += 1
    if ctx.rcu_nesting == 1:
        w.rcu.sections += 1
        w.rcu.readers[ctx] = w.rcu.sections
    w.trace_step("rcu_read_lock()")
    yield None


def rcu_read_unlock() -> Steps[None]:
    w = current.world()
    ctx = current.context()
    ctx.rcu_nesting -= 1
    if ctx.rcu_nesting == 0:
        del w.rcu.readers[ctx]
        w.reader_left(ctx)
    w.trace_step("rcu_read_unlock()")
    yield None


def _head_activate(head: Head, call: str) -> None:
    """`call` is the call_rcu() being made, for the diagram when it breaks."""
    w = current.world()
    if isinstance(head, PageRcuHead):
        page = head.page
        w.access(page, f"call_rcu({head})")
        if page.lru is Lru.RCU_QUEUED:
            w.report(
                RcuHeadReuse,
                f"ODEBUG: activate active (active state 1) object: {head} object type: "
                "rcu_head hint: call_rcu on an rcu_head already queued",
                where=call,
            )
        elif page.lru is Lru.LISTED:
            w.report(
                ListCorruption,
                f"call_rcu({head}) clobbers {page}->lru, which is on {page.list_of}: "
                "list_add corruption on the next operation of that list",
                where=call,
            )
        page.lru = Lru.RCU_QUEUED
        page.list_of = None
    else:
        if head.container is not None:
            w.access(head.container, f"call_rcu({head})")
        if head.queued:
            w.report(
                RcuHeadReuse,
                f"ODEBUG: activate active (active state 1) object: {head} object type: rcu_head",
                where=call,
            )
        head.queued = True


def head_deactivate(head: Head) -> None:
    w = current.world()
    if isinstance(head, PageRcuHead):
        w.access(head.page, f"rcu callback on {head}")
        head.page.lru = Lru.CLOBBERED
    else:
        if head.container is not None:
            w.access(head.container, f"rcu callback on {head}")
        head.queued = False


def call_rcu(head: Head, fn: Callback, label: str | None = None) -> Steps[None]:
    w = current.world()
    ctx = current.context()
    call = f"call_rcu({head}, {getattr(fn, '__name__', fn)})"
    _head_activate(head, call)
    name = label or f"{getattr(fn, '__name__', 'callback')}({head})"
    w.rcu.queues.setdefault(ctx.cpu.id, []).append(RcuCallback(head, fn, w.rcu.next_target(), name))
    w.trace_step(call)
    yield None


def synchronize_rcu() -> Steps[None]:
    w = current.world()
    ctx = current.context()
    if ctx.rcu_nesting:
        raise RuntimeError(f"{ctx!r}: synchronize_rcu() inside an RCU read-side section")
    target = w.rcu.next_target()
    w.trace_step("synchronize_rcu() waits for a grace period")
    while w.rcu.completed < target:
        yield Blocked(target, "synchronize_rcu()")
    w.trace_step("synchronize_rcu() returns")
    yield None
