"""Spinlocks, with the deadlock and lockdep checks.

A context that finds the lock held spins: it is blocked, not failed. The
deadlock is reported the moment it is certain: following "waits for" from
the spinning context (a lock's holder; a task's softirq on top of it) comes
back to the spinning context, or reaches a holder that has finished.

Lockdep tracks usage per lock class, as the kernel does: the class of
mm->context.lock is one, whichever mm it belongs to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import define

from stateful.kernel import current
from stateful.kernel.cpu import Blocked, Context, Steps, local_bh_disable, local_bh_enable
from stateful.violations import Deadlock, Lockdep

if TYPE_CHECKING:
    from stateful.kernel.memory import KObject


@define(eq=False)
class SpinLock:
    name: str  # the expression a developer would write: "&mm0->context.lock"
    lock_class: str  # lockdep class: "&mm->context.lock"
    container: KObject | None = None
    holder: Context | None = None
    initialised: bool = False

    def __repr__(self) -> str:
        return self.name


@define
class LockUsage:
    """Lockdep's usage bits for one lock class, with where each was first seen."""

    in_softirq: str | None = None  # IN-SOFTIRQ-W
    softirq_on: str | None = None  # SOFTIRQ-ON-W


def DEFINE_SPINLOCK(name: str) -> SpinLock:  # noqa: N802 - the kernel's name
    return SpinLock(name=name, lock_class=name, initialised=True)


def spin_lock_init(lock: SpinLock) -> Steps[None]:
    w = current.world()
    if lock.container is not None:
        w.access(lock.container, f"spin_lock_init({lock})")
    lock.initialised = True
    lock.holder = None
    w.trace_step(f"spin_lock_init({lock})")
    yield None


def _lockdep_acquire(lock: SpinLock, ctx: Context) -> None:
    w = current.world()
    if not w.config.prove_locking or not w.debug_locks:
        return
    usage = w.lock_usage.setdefault(lock.lock_class, LockUsage())
    where = f"{ctx!r} at step {w.steps}"
    if ctx.in_softirq:
        usage.in_softirq = usage.in_softirq or where
    elif ctx.bh_enabled:
        usage.softirq_on = usage.softirq_on or where
    if usage.in_softirq and usage.softirq_on:
        w.debug_locks_off()  # print_usage_bug: lockdep is off after its first splat
        new, old = (
            ("IN-SOFTIRQ-W", "SOFTIRQ-ON-W") if ctx.in_softirq else ("SOFTIRQ-ON-W", "IN-SOFTIRQ-W")
        )
        w.report(
            Lockdep,
            f"WARNING: inconsistent lock state: inconsistent {{{old}}} -> {{{new}}} usage. "
            f"{lock.lock_class} {{{old}}} state was registered at: "
            f"{usage.softirq_on if old == 'SOFTIRQ-ON-W' else usage.in_softirq}; "
            f"now taken by {where}. Possible unsafe locking scenario: "
            f"lock({lock.lock_class}); <Interrupt> lock({lock.lock_class}); *** DEADLOCK ***",
        )


def _waits_for(ctx: Context) -> Context | None:
    """The context ctx cannot make progress without, or None if it can run."""
    if ctx.done:
        return None
    above = ctx.cpu.above(ctx)
    if above is not None:
        return above
    if ctx.blocked is not None and isinstance(ctx.blocked.on, SpinLock):
        return ctx.blocked.on.holder
    return None


def _attempt(ctx: Context, lock: SpinLock) -> str:
    return ctx.blocked.why if ctx.blocked is not None else f"spin_lock({lock})"


def check_deadlock(ctx: Context, lock: SpinLock) -> None:
    w = current.world()
    holder = lock.holder
    assert holder is not None
    chain = [holder]
    while True:
        node = chain[-1]
        if node is ctx:
            how = (
                f"{ctx!r} interrupted {holder!r} on the same CPU"
                if holder.cpu is ctx.cpu
                else "cycle: " + " -> ".join(repr(c) for c in [ctx, *chain])
            )
            w.report(
                Deadlock,
                f"rcu: INFO: rcu_sched self-detected stall on CPU{ctx.cpu.id}: "
                f"{_attempt(ctx, lock)} spins forever: {how}, which holds it",
            )
            return
        if node.done:
            w.report(
                Deadlock,
                f"rcu: INFO: rcu_sched self-detected stall on CPU{ctx.cpu.id}: "
                f"{_attempt(ctx, lock)} spins forever: held by {node!r}, which has returned",
            )
            return
        nxt = _waits_for(node)
        if nxt is None or nxt in chain:
            return
        chain.append(nxt)


def _acquire(lock: SpinLock, flavour: str) -> Steps[None]:
    w = current.world()
    ctx = current.context()
    w.trace_step(f"{flavour}({lock})")
    if lock.container is not None:
        w.access(lock.container, f"{flavour}({lock})")
    _lockdep_acquire(lock, ctx)
    if lock.holder is ctx:
        w.report(
            Deadlock, f"BUG: spinlock recursion on CPU{ctx.cpu.id}, {lock} already held by {ctx!r}"
        )
    if lock.holder is not None:
        w.contention[lock.lock_class] += 1
        holder = lock.holder
        w.trace_step(f"  spins: held by CPU{holder.cpu.id}/{holder.kind}")
        while lock.holder is not None:
            yield Blocked(lock, f"{flavour}({lock})")
        if lock.container is not None:
            w.access(lock.container, f"{flavour}({lock})")
        w.trace_step(f"  {flavour}({lock}) taken")
    w.acquisitions[lock.lock_class] += 1
    lock.holder = ctx
    ctx.held.append(lock)
    yield None


def _release(lock: SpinLock, flavour: str) -> None:
    w = current.world()
    ctx = current.context()
    if lock.container is not None:
        w.access(lock.container, f"{flavour}({lock})")
    if lock.holder is not ctx:
        raise RuntimeError(f"{ctx!r}: {flavour}({lock}) but the holder is {lock.holder!r}")
    lock.holder = None
    ctx.held.remove(lock)
    w.trace_step(f"{flavour}({lock})")


def spin_lock(lock: SpinLock) -> Steps[None]:
    yield from _acquire(lock, "spin_lock")


def spin_unlock(lock: SpinLock) -> Steps[None]:
    _release(lock, "spin_unlock")
    yield None


def spin_lock_bh(lock: SpinLock) -> Steps[None]:
    # The bh-disable and the first attempt are one step: nothing can slip in
    # between them that matters, and it keeps traces short.
    ctx = current.context()
    ctx.bh_disabled += 1
    yield from _acquire(lock, "spin_lock_bh")


def spin_unlock_bh(lock: SpinLock) -> Steps[None]:
    ctx = current.context()
    if ctx.bh_disabled == 0:
        raise RuntimeError(f"{ctx!r}: spin_unlock_bh({lock}) with bh enabled: not a _bh lock")
    _release(lock, "spin_unlock_bh")
    ctx.bh_disabled -= 1
    yield None


__all__ = [
    "DEFINE_SPINLOCK",
    "LockUsage",
    "SpinLock",
    "check_deadlock",
    "local_bh_disable",
    "local_bh_enable",
    "spin_lock",
    "spin_lock_bh",
    "spin_lock_init",
    "spin_unlock",
    "spin_unlock_bh",
]
