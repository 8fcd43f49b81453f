"""rw_semaphore: readers share, a writer excludes, downgrade lets readers in,
and a waiter sleeps: it is not runnable, it holds up no grace period, and it
is no deadlock until nothing can ever wake it (the drain says so)."""

from __future__ import annotations

import pytest
from kernel_helpers import Script, make_world, queue_callback, recorder

from stateful import drain, ops
from stateful.kernel import api as k
from stateful.kernel.cpu import Context
from stateful.kernel.rcu import RcuHead
from stateful.kernel.rwsem import (
    RwSemaphore,
    down_read,
    down_read_trylock,
    down_write,
    downgrade_write,
    up_read,
    up_write,
)
from stateful.kernel.world import World
from stateful.violations import Deadlock


def sem(name: str = "sem") -> RwSemaphore:
    return RwSemaphore(f"&{name}", name)


def reader(s: RwSemaphore, log: list[str], name: str) -> Script:
    yield from down_read(s)
    log.append(f"{name} in")
    yield from up_read(s)
    log.append(f"{name} out")


def writer(s: RwSemaphore, log: list[str], name: str) -> Script:
    yield from down_write(s)
    log.append(f"{name} in")
    yield from up_write(s)
    log.append(f"{name} out")


def start(w: World, cpu: int, name: str, script: Script) -> Context:
    return w.start_task(w.cpus[cpu], name, script)


def test_readers_share_the_lock() -> None:
    w = make_world()
    s, log = sem(), []
    a, b = start(w, 0, "a", reader(s, log, "a")), start(w, 1, "b", reader(s, log, "b"))
    assert w.advance(a) and w.advance(b)
    assert s.readers == [a, b] and log == []
    assert w.advance(a) and w.advance(b)
    assert log == ["a in", "b in"]


def test_a_writer_excludes_and_its_waiter_sleeps_until_handed_the_lock() -> None:
    w = make_world()
    s, log = sem(), []
    holder = start(w, 0, "holder", writer(s, log, "w"))
    assert w.advance(holder) and s.owner is holder
    waiter = start(w, 1, "waiter", reader(s, log, "r"))
    assert not w.advance(waiter)
    assert waiter.blocked is not None and not waiter.blocked.spins
    assert not w.runnable(waiter)
    # Asleep, not spinning: a grace period ends, and a softirq may run there.
    assert waiter.quiescent
    w.rcu.start_gp()
    assert w.rcu.may_end_gp()
    assert w.cpus[1].softirq_may_start()
    w.run(holder)
    assert holder.done and s.readers == [waiter] and w.runnable(waiter)
    w.run(waiter)
    assert log == ["w in", "w out", "r in", "r out"]


def test_a_writer_waits_for_the_readers_and_newcomers_queue_behind_it() -> None:
    w = make_world(ncpus=3)
    s, log = sem(), []
    r1 = start(w, 0, "r1", reader(s, log, "r1"))
    assert w.advance(r1)
    wr = start(w, 1, "w", writer(s, log, "w"))
    assert not w.advance(wr)
    r2 = start(w, 2, "r2", reader(s, log, "r2"))
    assert not w.advance(r2), "a reader does not pass a waiting writer"
    w.run(r1)
    assert s.owner is wr and not w.runnable(r2)
    w.run(wr)
    assert s.readers == [r2]
    w.run(r2)
    assert log == ["r1 in", "r1 out", "w in", "w out", "r2 in", "r2 out"]


def test_a_release_hands_the_lock_to_every_waiting_reader() -> None:
    """Phase-fair, as rwsem_mark_wake: readers queued behind a writer come along."""
    w = make_world(ncpus=4)
    s, log = sem(), []
    holder = start(w, 0, "holder", writer(s, log, "w0"))
    assert w.advance(holder)
    r1 = start(w, 1, "r1", reader(s, log, "r1"))
    w1 = start(w, 2, "w1", writer(s, log, "w1"))
    r2 = start(w, 3, "r2", reader(s, log, "r2"))
    for ctx in (r1, w1, r2):
        assert not w.advance(ctx)
    w.run(holder)
    assert s.readers == [r1, r2] and s.owner is None and not w.runnable(w1)


def downgrader(s: RwSemaphore, log: list[str]) -> Script:
    yield from down_write(s)
    log.append("write")
    yield from downgrade_write(s)
    log.append("read")
    yield from up_read(s)


def test_downgrade_lets_the_readers_in_and_keeps_the_writers_out() -> None:
    w = make_world(ncpus=3)
    s, log = sem(), []
    d = start(w, 0, "munmap", downgrader(s, log))
    assert w.advance(d)
    r = start(w, 1, "fault", reader(s, log, "r"))
    assert not w.advance(r)
    assert w.advance(d) and log == ["write"]  # downgrade_write
    assert s.readers == [d, r], "the waiting reader is in, beside the downgraded writer"
    wr = start(w, 2, "w", writer(s, log, "w"))
    assert not w.advance(wr)
    w.run(r)
    assert not w.runnable(wr)
    w.run(d)
    assert s.owner is wr


def test_downgrade_wakes_no_reader_queued_behind_a_writer() -> None:
    w = make_world(ncpus=3)
    s, log = sem(), []
    d = start(w, 0, "d", downgrader(s, log))
    assert w.advance(d)
    wr = start(w, 1, "w", writer(s, log, "w"))
    r = start(w, 2, "r", reader(s, log, "r"))
    assert not w.advance(wr) and not w.advance(r)
    assert w.advance(d)
    assert s.readers == [d] and not w.runnable(r) and not w.runnable(wr)


def trylocker(s: RwSemaphore, out: list[bool]) -> Script:
    out.append((yield from down_read_trylock(s)))
    if out[-1]:
        yield from up_read(s)


def test_read_trylock_fails_under_a_writer_and_behind_a_waiter() -> None:
    w = make_world(ncpus=3)
    s, log, got = sem(), [], []
    holder = start(w, 0, "holder", reader(s, log, "r"))
    assert w.advance(holder)
    t = start(w, 1, "t", trylocker(s, got))
    w.run(t)
    assert got == [True]
    wr = start(w, 1, "w", writer(s, log, "w"))
    assert not w.advance(wr)
    t = start(w, 2, "t2", trylocker(s, got))
    w.run(t)
    assert got == [True, False] and t.done


def abba(first: RwSemaphore, second: RwSemaphore) -> Script:
    yield from down_write(first)
    yield from down_write(second)
    yield from up_write(second)
    yield from up_write(first)


def test_sleeping_is_no_deadlock_but_a_cycle_is_reported_by_the_drain() -> None:
    w = make_world()
    s1, s2 = sem("s1"), sem("s2")
    a, b = start(w, 0, "a", abba(s1, s2)), start(w, 1, "b", abba(s2, s1))
    assert w.advance(a) and w.advance(b)
    assert not w.advance(a) and not w.advance(b)  # each sleeps: nothing raised yet
    with pytest.raises(Deadlock, match=r"blocked for more than 120 seconds.*sleeps in down_write"):
        drain.drain(w, ops.PageTables())


def test_a_sleeping_task_lets_a_softirq_run_on_its_cpu() -> None:
    w = make_world()
    s, log = sem(), []
    ran: list[str] = []
    queue_callback(w, 1, RcuHead("head"), recorder(ran, "cb"), "cb")
    holder = start(w, 0, "holder", writer(s, log, "w"))
    assert w.advance(holder)
    waiter = start(w, 1, "waiter", reader(s, log, "r"))
    assert not w.advance(waiter)
    assert w.rcu.try_end_gp(), "the sleeper holds up no grace period"
    assert w.softirq_may_run(w.cpus[1])
    w.run(w.start_softirq(w.cpus[1]))
    assert ran == ["cb@CPU1/softirq"]


def sleeps_under_a_spinlock(s: RwSemaphore) -> Script:
    lock = k.DEFINE_SPINLOCK("lock")
    yield from k.spin_lock(lock)
    yield from down_read(s)


def test_sleeping_in_atomic_context_is_a_model_error() -> None:
    w = make_world()
    ctx = start(w, 0, "bad", sleeps_under_a_spinlock(sem()))
    assert w.advance(ctx)
    with pytest.raises(RuntimeError, match="sleeping function called from invalid context"):
        w.advance(ctx)
