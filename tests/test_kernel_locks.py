"""Spinlocks: deadlock detection, lockdep's softirq usage check, and bh vs softirq."""

from __future__ import annotations

import pytest
from kernel_helpers import (
    Script,
    grace_period,
    locker,
    make_world,
    queue_callback,
    run_task,
    softirq,
)

from stateful.kernel import api as k
from stateful.kernel.locks import SpinLock
from stateful.kernel.mm import MMStruct
from stateful.kernel.rcu import RcuHead
from stateful.violations import Deadlock, Lockdep


def hold_then_release(lock: SpinLock, bh: bool) -> Script:
    return locker(lock, bh)()


def lock_two(first: SpinLock, second: SpinLock) -> Script:
    yield from k.spin_lock(first)
    yield from k.spin_lock(second)
    yield from k.spin_unlock(second)
    yield from k.spin_unlock(first)


# --- deadlock ---------------------------------------------------------------


def test_softirq_taking_the_lock_its_interrupted_task_holds_deadlocks() -> None:
    # lockdep would shout first (task SOFTIRQ-ON, softirq IN-SOFTIRQ): let it go on.
    w = make_world(continue_after={"lockdep"})
    lock = k.DEFINE_SPINLOCK("demo_lock")
    queue_callback(w, 0, RcuHead("head"), locker(lock, bh=False), "cb")
    grace_period(w)
    task = w.start_task(w.cpus[0], "holder", hold_then_release(lock, bh=False))
    assert w.advance(task)
    assert lock.holder is task
    assert w.cpus[0].softirq_may_start()
    with pytest.raises(Deadlock, match=r"stall on CPU0.*interrupted CPU0/task:holder on the same"):
        softirq(w, 0)
    assert [r.property for r in w.reports] == ["lockdep"]


def test_spin_lock_bh_keeps_the_softirq_out_so_nothing_is_reported() -> None:
    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")
    log: list[str] = []
    queue_callback(w, 0, RcuHead("head"), locker(lock, bh=True, log=log), "cb")
    grace_period(w)
    task = w.start_task(w.cpus[0], "holder", hold_then_release(lock, bh=True))
    assert w.advance(task)
    assert lock.holder is task
    assert not w.cpus[0].softirq_may_start()
    with pytest.raises(AssertionError, match="softirq with bh disabled"):
        w.start_softirq(w.cpus[0])
    w.run(task)
    assert task.done and lock.holder is None
    assert w.cpus[0].softirq_may_start()
    assert softirq(w, 0).done
    assert log == ["took demo_lock"]
    assert w.reports == [] and w.debug_locks


def test_abba_across_two_cpus_deadlocks() -> None:
    w = make_world()
    a, b = k.DEFINE_SPINLOCK("lock_a"), k.DEFINE_SPINLOCK("lock_b")
    t0 = w.start_task(w.cpus[0], "ab", lock_two(a, b))
    t1 = w.start_task(w.cpus[1], "ba", lock_two(b, a))
    assert w.advance(t0) and w.advance(t1)
    assert not w.advance(t0)  # spins on b: t1 can still run, no deadlock yet
    with pytest.raises(Deadlock, match=r"spin_lock\(lock_a\) spins forever: cycle: CPU1/task:ba"):
        w.advance(t1)


def test_softirq_spinning_on_a_remote_holder_that_waits_for_its_task_deadlocks() -> None:
    # CPU0's task holds a (bh on); CPU1's task holds b and spins on a; a softirq on
    # CPU0, on top of a's holder, spins on b: CPU0/softirq -> CPU1/task -> CPU0/task -> itself.
    w = make_world(prove_locking=False)
    a, b = k.DEFINE_SPINLOCK("lock_a"), k.DEFINE_SPINLOCK("lock_b")
    queue_callback(w, 0, RcuHead("head"), locker(b, bh=False), "cb")
    grace_period(w)
    t0 = w.start_task(w.cpus[0], "holds_a", hold_then_release(a, bh=False))
    t1 = w.start_task(w.cpus[1], "b_then_a", lock_two(b, a))
    assert w.advance(t0) and w.advance(t1)
    assert not w.advance(t1)  # spins on a, whose holder can still run
    with pytest.raises(
        Deadlock,
        match=r"cycle: CPU0/softirq:rcu_core -> CPU1/task:b_then_a -> CPU0/task:holds_a -> "
        r"CPU0/softirq:rcu_core",
    ):
        softirq(w, 0)


def test_lock_held_on_another_cpu_just_spins_until_released() -> None:
    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")
    t0 = w.start_task(w.cpus[0], "holder", hold_then_release(lock, bh=False))
    t1 = w.start_task(w.cpus[1], "waiter", hold_then_release(lock, bh=False))
    assert w.advance(t0)
    assert not w.advance(t1)
    assert t1.blocked is not None and t1.blocked.on is lock
    assert not w.runnable(t1)
    assert w.contention["demo_lock"] == 1
    w.run(t0)
    assert w.runnable(t1)
    w.run(t1)
    assert t0.done and t1.done and lock.holder is None
    assert w.acquisitions["demo_lock"] == 2


def test_same_order_on_two_cpus_does_not_deadlock() -> None:
    w = make_world()
    a, b = k.DEFINE_SPINLOCK("lock_a"), k.DEFINE_SPINLOCK("lock_b")
    t0 = w.start_task(w.cpus[0], "ab0", lock_two(a, b))
    t1 = w.start_task(w.cpus[1], "ab1", lock_two(a, b))
    assert w.advance(t0) and w.advance(t0)
    assert not w.advance(t1)
    w.run(t0)
    w.run(t1)
    assert t0.done and t1.done


def test_taking_a_held_lock_again_is_spinlock_recursion() -> None:
    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")
    with pytest.raises(Deadlock, match="spinlock recursion on CPU0, demo_lock already held"):
        run_task(w, lock_two(lock, lock))


# --- lockdep ----------------------------------------------------------------


def test_lockdep_softirq_on_then_in_softirq_is_inconsistent() -> None:
    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")
    run_task(w, hold_then_release(lock, bh=False))  # SOFTIRQ-ON-W, lock released
    queue_callback(w, 0, RcuHead("head"), locker(lock, bh=False), "cb")
    grace_period(w)
    with pytest.raises(Lockdep, match=r"inconsistent \{SOFTIRQ-ON-W\} -> \{IN-SOFTIRQ-W\} usage"):
        softirq(w, 0)
    assert lock.holder is None  # no deadlock happened, the lock is free


def test_lockdep_in_softirq_then_softirq_on_is_inconsistent() -> None:
    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")
    queue_callback(w, 1, RcuHead("head"), locker(lock, bh=False), "cb")
    grace_period(w)
    assert softirq(w, 1).done  # IN-SOFTIRQ-W
    with pytest.raises(Lockdep, match=r"inconsistent \{IN-SOFTIRQ-W\} -> \{SOFTIRQ-ON-W\} usage"):
        run_task(w, hold_then_release(lock, bh=False), cpu=0)


def test_lockdep_usage_is_per_class_shared_by_every_mm() -> None:
    w = make_world()
    mm0, mm1 = MMStruct.create("mm0", pgste=False), MMStruct.create("mm1", pgste=False)
    run_task(w, hold_then_release(mm0.context.lock, bh=False))
    queue_callback(w, 0, RcuHead("head"), locker(mm1.context.lock, bh=True), "cb")
    grace_period(w)
    with pytest.raises(Lockdep, match=r"&mm->context\.lock \{SOFTIRQ-ON-W\} state was registered"):
        softirq(w, 0)


def test_lockdep_is_quiet_when_the_task_always_uses_spin_lock_bh() -> None:
    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")
    log: list[str] = []
    run_task(w, hold_then_release(lock, bh=True))
    queue_callback(w, 0, RcuHead("head"), locker(lock, bh=True, log=log), "cb1")
    queue_callback(w, 0, RcuHead("head2"), locker(lock, bh=False, log=log), "cb2")
    grace_period(w)
    assert softirq(w, 0).done
    run_task(w, hold_then_release(lock, bh=True))
    assert log == ["took demo_lock", "took demo_lock"]
    usage = w.lock_usage["demo_lock"]
    assert usage.in_softirq is not None and usage.softirq_on is None
    assert w.reports == []


def test_lockdep_is_quiet_when_bh_is_disabled_around_a_plain_spin_lock() -> None:
    def bh_off_then_lock(lock: SpinLock) -> Script:
        yield from k.local_bh_disable()
        yield from k.spin_lock(lock)
        yield from k.spin_unlock(lock)
        yield from k.local_bh_enable()

    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")
    run_task(w, bh_off_then_lock(lock))
    queue_callback(w, 0, RcuHead("head"), locker(lock, bh=False), "cb")
    grace_period(w)
    assert softirq(w, 0).done
    assert w.lock_usage["demo_lock"].softirq_on is None
    assert w.reports == []


def test_lockdep_reports_a_class_once_and_goes_on_when_told_to() -> None:
    w = make_world(continue_after={"lockdep"})
    lock = k.DEFINE_SPINLOCK("demo_lock")
    run_task(w, hold_then_release(lock, bh=False))
    for i in range(2):
        queue_callback(w, 0, RcuHead(f"head{i}"), locker(lock, bh=False), f"cb{i}")
    grace_period(w)
    assert softirq(w, 0).done
    assert [type(r) for r in w.reports] == [Lockdep]
    assert "inconsistent lock state" in str(w.reports[0])


def test_lockdep_can_be_switched_off() -> None:
    w = make_world(prove_locking=False)
    lock = k.DEFINE_SPINLOCK("demo_lock")
    log: list[str] = []
    run_task(w, hold_then_release(lock, bh=False))
    queue_callback(w, 0, RcuHead("head"), locker(lock, bh=False, log=log), "cb")
    grace_period(w)
    assert softirq(w, 0).done
    assert log == ["took demo_lock"] and w.reports == [] and w.lock_usage == {}


# --- bh and softirq ---------------------------------------------------------


def test_softirq_never_starts_where_bh_is_disabled() -> None:
    def bh_section() -> Script:
        yield from k.local_bh_disable()
        yield from k.local_bh_enable()

    w = make_world()
    cpu = w.cpus[0]
    assert cpu.softirq_may_start()  # idle CPU
    task = w.start_task(cpu, "bh", bh_section())
    assert cpu.softirq_may_start()
    assert w.advance(task)
    assert task.bh_disabled == 1 and not cpu.softirq_may_start()
    with pytest.raises(AssertionError, match="softirq with bh disabled"):
        w.start_softirq(cpu)
    assert cpu.softirq is None
    assert w.cpus[1].softirq_may_start()  # only this CPU's bh is off
    assert w.advance(task)
    assert cpu.softirq_may_start()


def test_a_spinning_spin_lock_bh_still_keeps_softirqs_out() -> None:
    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")
    t1 = w.start_task(w.cpus[1], "holder", hold_then_release(lock, bh=False))
    t0 = w.start_task(w.cpus[0], "waiter", hold_then_release(lock, bh=True))
    assert w.advance(t1)
    assert not w.advance(t0)
    assert not w.cpus[0].softirq_may_start()


def test_one_softirq_at_a_time_and_the_task_below_waits_for_it() -> None:
    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")
    queue_callback(w, 0, RcuHead("head"), locker(lock, bh=True), "cb")
    grace_period(w)
    task = w.start_task(w.cpus[0], "task", hold_then_release(lock, bh=False))
    soft = w.start_softirq(w.cpus[0])
    assert not w.cpus[0].softirq_may_start()
    assert w.cpus[0].top is soft
    assert not w.runnable(task) and w.runnable(soft)
    w.run(soft)
    assert soft.done and w.cpus[0].softirq is None and w.runnable(task)
