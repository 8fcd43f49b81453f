"""rw_semaphore: the sleeping reader-writer lock of mmap_lock, i_mmap_rwsem
and the per-VMA lock.

A context that cannot take it sleeps: it is blocked, not spinning, so it
holds up no grace period, a softirq may still run on its CPU, and the
immediate deadlock check of the spinlocks does not apply; a sleeper that is
never woken is the drain's to report, as the hung-task detector would. The
sleeper keeps its CPU in the model: no other task starts there meanwhile
(README, "What the model takes as given").

The lock is handed over at release, as rwsem_mark_wake does: to the first
waiter if it is a writer, otherwise to every waiting reader (phase-fair:
readers queued behind a writer come along). A newcomer takes the lock only
when nobody waits for it, which is what the count's RWSEM_FLAG_WAITERS makes
the fast paths and the trylocks do. Not modelled: a writer's optimistic
spinning and a reader's lock stealing, which can let a newcomer in at the
instant between a release and the woken waiter's acquisition; they change
which task gets the lock next, and any such order is also reached here by
the newcomer arriving before the waiter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Blocked, Context, Steps

if TYPE_CHECKING:
    from stateful.kernel.memory import KObject


@define(eq=False)
class RwWaiter:
    ctx: Context
    write: bool


@define(eq=False)
class RwSemaphore:
    name: str  # the expression a developer would write: "&mm1->mmap_lock"
    lock_class: str
    container: KObject | None = None
    owner: Context | None = None  # the writer
    readers: list[Context] = field(factory=list)
    waiters: list[RwWaiter] = field(factory=list)

    def __repr__(self) -> str:
        return self.name

    def granted(self, ctx: Context) -> bool:
        """ctx holds the lock (a sleeper is woken with the lock already its own)."""
        return ctx is self.owner or ctx in self.readers

    def holders(self) -> list[Context]:
        return [self.owner] if self.owner is not None else list(self.readers)

    def _free_for(self, write: bool) -> bool:
        if self.waiters or self.owner is not None:
            return False
        return not (write and self.readers)

    def try_read(self, ctx: Context) -> bool:
        """__down_read_trylock, inside a step of the caller's: never sleeps."""
        if self.granted(ctx):
            raise RuntimeError(f"{ctx!r}: read trylock of {self}, which it holds: recursive")
        if not self._free_for(False):
            return False
        _grant(self, ctx, False)
        return True

    def release(self, ctx: Context, write: bool) -> None:
        """The release itself, inside a step of the caller's; the lock goes to
        whoever waits for it."""
        if write and self.owner is not ctx or not write and ctx not in self.readers:
            raise RuntimeError(f"{ctx!r}: releases {self}, which it does not hold that way")
        if write:
            self.owner = None
        else:
            self.readers.remove(ctx)
        ctx.rw_held.remove(self)
        _wake(self)


def _might_sleep(ctx: Context, call: str) -> None:
    """might_sleep(): the model's own code must never sleep in atomic context."""
    if ctx.in_softirq or ctx.held or ctx.bh_disabled or ctx.rcu_nesting:
        raise RuntimeError(
            f"BUG: sleeping function called from invalid context: {call} by {ctx!r} "
            f"(holding {ctx.held}, bh disabled {ctx.bh_disabled}, rcu {ctx.rcu_nesting})"
        )


def _grant(sem: RwSemaphore, ctx: Context, write: bool) -> None:
    if write:
        sem.owner = ctx
    else:
        sem.readers.append(ctx)
    ctx.rw_held.append(sem)


def _wake(sem: RwSemaphore, readers_only: bool = False) -> None:
    """rwsem_mark_wake: hand the lock to the first waiter, or to all waiting readers."""
    if not sem.waiters or sem.owner is not None:
        return
    first = sem.waiters[0]
    if first.write:
        if not readers_only and not sem.readers:
            sem.waiters.pop(0)
            _grant(sem, first.ctx, True)
        return
    for waiter in [w for w in sem.waiters if not w.write]:
        sem.waiters.remove(waiter)
        _grant(sem, waiter.ctx, False)


def _down(sem: RwSemaphore, write: bool, call: str) -> Steps[None]:
    w = current.world()
    ctx = current.context()
    _might_sleep(ctx, call)
    w.trace_step(call)
    if sem.container is not None:
        w.access(sem.container, call)
    if sem.granted(ctx) or any(waiter.ctx is ctx for waiter in sem.waiters):
        raise RuntimeError(f"{ctx!r}: {call} while it already holds {sem}: recursive locking")
    if sem._free_for(write):
        _grant(sem, ctx, write)
        yield None
        return
    # Worded here, not kept in a local across the sleep: a CPU's number is
    # a name, and no state may hold it (stateful/symmetry.py).
    w.trace_step(
        "  sleeps: held by "
        + (", ".join(f"CPU{h.cpu.id}/{h.kind}" for h in sem.holders()) or "waiters first")
    )
    sem.waiters.append(RwWaiter(ctx, write))
    while not sem.granted(ctx):
        yield Blocked(sem, call, sleeping=True)
    if sem.container is not None:
        w.access(sem.container, call)
    w.trace_step(f"  {call} taken")
    yield None


def _up(sem: RwSemaphore, write: bool, call: str) -> None:
    w = current.world()
    if sem.container is not None:
        w.access(sem.container, call)
    sem.release(current.context(), write)
    w.trace_step(call)


def down_read(sem: RwSemaphore, call: str = "") -> Steps[None]:
    yield from _down(sem, False, call or f"down_read({sem})")


def down_write(sem: RwSemaphore, call: str = "") -> Steps[None]:
    yield from _down(sem, True, call or f"down_write({sem})")


def up_read(sem: RwSemaphore, call: str = "") -> Steps[None]:
    _up(sem, False, call or f"up_read({sem})")
    yield None


def up_write(sem: RwSemaphore, call: str = "") -> Steps[None]:
    _up(sem, True, call or f"up_write({sem})")
    yield None


def downgrade_write(sem: RwSemaphore, call: str = "") -> Steps[None]:
    """The writer becomes a reader; waiting readers come in unless a writer is first."""
    w = current.world()
    ctx = current.context()
    call = call or f"downgrade_write({sem})"
    if sem.owner is not ctx:
        raise RuntimeError(f"{ctx!r}: {call} but it does not hold {sem} for write")
    sem.owner = None
    sem.readers.append(ctx)
    _wake(sem, readers_only=True)
    w.trace_step(call)
    yield None


def down_read_trylock(sem: RwSemaphore, call: str = "") -> Steps[bool]:
    """Never sleeps: fails while a writer holds the lock or anyone waits for it."""
    w = current.world()
    call = call or f"down_read_trylock({sem})"
    if sem.container is not None:
        w.access(sem.container, call)
    taken = sem.try_read(current.context())
    w.trace_step(f"{call} -> {int(taken)}")
    yield None
    return taken


__all__ = [
    "RwSemaphore",
    "down_read",
    "down_read_trylock",
    "down_write",
    "downgrade_write",
    "up_read",
    "up_write",
]
