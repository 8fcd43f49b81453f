"""CPUs, their task and softirq contexts, and the bh-disable depth.

A CPU runs at most one task context and, on top of it, at most one softirq
context. A softirq can only start where the context on top has bh enabled,
and while it runs the task below cannot make a step.
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define, field

from stateful.kernel import current

if TYPE_CHECKING:
    from stateful.kernel.locks import SpinLock
    from stateful.kernel.rwsem import RwSemaphore

T = TypeVar("T")


@define(frozen=True)
class Blocked:
    """Yielded by a primitive that cannot proceed: the context spins on a
    spinlock, or sleeps (on an rw_semaphore, or in synchronize_rcu)."""

    # a spinlock, a sleeping lock, or the grace-period number synchronize_rcu waits for
    on: SpinLock | RwSemaphore | int
    why: str
    sleeping: bool = False  # an rw_semaphore's waiter sleeps: it does not spin

    @property
    def spins(self) -> bool:
        return not self.sleeping and not isinstance(self.on, int)


# What a primitive yields: None for a step taken, Blocked while it cannot go on.
Steps = Generator[Blocked | None, None, T]


def progress(gen: Any) -> tuple[tuple[str, int], ...]:
    """Where a context's generator is: the code and instruction of each
    generator down its `yield from` chain (-2 once one has finished)."""
    out = []
    while isinstance(gen, types.GeneratorType):
        frame = gen.gi_frame
        out.append((gen.gi_code.co_qualname, frame.f_lasti if frame else -2))
        gen = gen.gi_yieldfrom
    return tuple(out)


@define(eq=False)
class Context:
    cpu: CPU
    kind: str  # "task" or "softirq"
    label: str
    gen: Generator[Any, None, Any]
    bh_disabled: int = 0
    rcu_nesting: int = 0
    depth: int = 0
    blocked: Blocked | None = None
    done: bool = False
    result: Any = None
    held: list[SpinLock] = field(factory=list)
    rw_held: list[RwSemaphore] = field(factory=list)  # sleeping locks: no atomic section
    seen_tables: set[Any] = field(factory=set)
    # How `World.run` last left it: able to run (a budget ran out), or not
    # (it ended, or spins or sleeps). The exhaustive search reads it to tell
    # a preemption from a free switch; it is no state.
    left_runnable: bool | None = None
    # Whether the last switch away from it was an interrupt that ran
    # callbacks, here or on another CPU, since `World.run` last ran it. The
    # bound counts the interrupt, not a preemption: once the softirq has
    # ended or spun, a switch is at its end or spin, which is free. Read
    # within one rule call, like left_runnable; no state.
    left_at_interrupt: bool = False

    @property
    def in_softirq(self) -> bool:
        return self.kind == "softirq"

    @property
    def bh_enabled(self) -> bool:
        return self.bh_disabled == 0 and not self.in_softirq

    @property
    def quiescent(self) -> bool:
        """Not holding up a grace period implicitly: bh and preemption enabled."""
        # Blocked on a spinlock spins; on an rw_semaphore or a grace period
        # (synchronize_rcu), the context sleeps.
        spinning = self.blocked is not None and self.blocked.spins
        return (
            self.done
            or not self.in_softirq
            and self.bh_disabled == 0
            and not self.held
            and not spinning
        )

    def __repr__(self) -> str:
        where = "softirq" if self.in_softirq else "task"
        return f"CPU{self.cpu.id}/{where}:{self.label}"


@define(eq=False)
class CPU:
    id: int
    task: Context | None = None
    softirq: Context | None = None

    @property
    def top(self) -> Context | None:
        return self.softirq or self.task

    @property
    def idle(self) -> bool:
        return self.task is None and self.softirq is None

    def softirq_may_start(self) -> bool:
        if self.softirq is not None:
            return False
        return self.task is None or self.task.bh_enabled

    def above(self, ctx: Context) -> Context | None:
        """The context that must finish before ctx can run again."""
        if ctx is self.task and self.softirq is not None:
            return self.softirq
        return None


def local_bh_disable() -> Steps[None]:
    ctx = current.context()
    ctx.bh_disabled += 1
    current.world().trace_step("local_bh_disable()")
    yield None


def local_bh_enable() -> Steps[None]:
    ctx = current.context()
    if ctx.bh_disabled == 0:
        raise RuntimeError(f"{ctx}: local_bh_enable() without local_bh_disable()")
    ctx.bh_disabled -= 1
    current.world().trace_step("local_bh_enable()")
    yield None
