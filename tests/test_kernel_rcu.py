"""RCU: grace periods against readers, call_rcu callbacks, rcu-head-reuse."""

from __future__ import annotations

import pytest
from kernel_helpers import (
    Script,
    grace_period,
    locker,
    make_world,
    new_page,
    queue_callback,
    recorder,
    softirq,
)

from stateful.kernel import api as k
from stateful.kernel.rcu import RcuHead
from stateful.violations import RcuHeadReuse


def read_section() -> Script:
    yield from k.rcu_read_lock()
    yield from k.rcu_read_unlock()


# --- grace periods ----------------------------------------------------------


def test_grace_period_waits_for_a_reader_that_was_inside_when_it_began() -> None:
    w = make_world()
    reader = w.start_task(w.cpus[1], "reader", read_section())
    assert w.advance(reader)  # rcu_read_lock()
    w.rcu.start_gp()
    assert not w.rcu.may_end_gp()
    assert w.advance(reader)  # rcu_read_unlock()
    assert w.rcu.may_end_gp()
    w.rcu.end_gp()
    assert w.rcu.completed == 1 and not w.rcu.in_progress


def test_a_reader_that_started_after_the_grace_period_does_not_hold_it_up() -> None:
    w = make_world()
    w.rcu.start_gp()
    reader = w.start_task(w.cpus[1], "reader", read_section())
    assert w.advance(reader)
    assert reader in w.rcu.readers
    assert w.rcu.may_end_gp()
    w.rcu.end_gp()
    assert w.rcu.completed == 1


@pytest.mark.parametrize("bh", [True, False])
def test_grace_period_waits_for_a_spinlock_section_that_was_inside_when_it_began(
    bh: bool,
) -> None:
    """Since v4.20 bh-disabled and preempt-disabled code is a read-side section."""
    w = make_world()
    lock = k.DEFINE_SPINLOCK("test_lock")
    holder = w.start_task(w.cpus[1], "holder", locker(lock, bh)())
    assert w.advance(holder)  # spin_lock[_bh]
    w.rcu.start_gp()
    assert not w.rcu.may_end_gp()
    assert w.advance(holder)  # spin_unlock[_bh]
    assert w.rcu.may_end_gp()


def test_grace_period_waits_for_a_running_softirq_but_not_for_a_plain_task() -> None:
    w = make_world()
    page = new_page(w)
    log: list[str] = []

    def slow_callback(head: object) -> Script:
        log.append("start")
        yield None
        log.append("end")

    queue_callback(w, 0, page.rcu_head, slow_callback, "slow")
    grace_period(w)

    def plain() -> Script:
        yield None
        yield None

    task = w.start_task(w.cpus[1], "plain", plain())
    assert w.advance(task)
    sirq = w.start_softirq(w.cpus[0])
    assert w.advance(sirq) and log == ["start"]
    w.rcu.start_gp()
    assert not w.rcu.may_end_gp()  # the callback is running: bh is disabled
    w.run(sirq)
    assert sirq.done and w.rcu.may_end_gp()  # the task in between does not matter


def test_no_grace_period_ends_that_was_not_started() -> None:
    w = make_world()
    assert not w.rcu.may_end_gp()
    with pytest.raises(AssertionError):
        w.rcu.end_gp()


def test_nested_read_sections_hold_the_grace_period_until_the_outermost_unlock() -> None:
    def nested() -> Script:
        yield from k.rcu_read_lock()
        yield from k.rcu_read_lock()
        yield from k.rcu_read_unlock()
        yield from k.rcu_read_unlock()

    w = make_world()
    reader = w.start_task(w.cpus[0], "reader", nested())
    assert w.advance(reader) and w.advance(reader)
    w.rcu.start_gp()
    assert w.advance(reader)  # inner unlock
    assert not w.rcu.may_end_gp()
    assert w.advance(reader)  # outer unlock
    assert w.rcu.may_end_gp()


def test_a_new_section_of_an_old_reader_does_not_hold_up_the_grace_period() -> None:
    def two_sections() -> Script:
        yield from read_section()
        yield from read_section()

    w = make_world()
    reader = w.start_task(w.cpus[0], "reader", two_sections())
    assert w.advance(reader)  # first rcu_read_lock()
    w.rcu.start_gp()
    assert w.advance(reader)  # rcu_read_unlock(): the GP's only old reader has left
    assert w.rcu.may_end_gp()
    assert w.advance(reader)  # rcu_read_lock() of a section that began after the GP
    assert w.rcu.may_end_gp()


def test_synchronize_rcu_spins_until_a_full_grace_period_has_passed() -> None:
    def sync() -> Script:
        yield from k.synchronize_rcu()

    w = make_world()
    ctx = w.start_task(w.cpus[0], "sync", sync())
    assert not w.advance(ctx)
    assert not w.runnable(ctx)
    grace_period(w)
    assert w.runnable(ctx)
    w.run(ctx)
    assert ctx.done


# --- callbacks --------------------------------------------------------------


def test_callback_becomes_ready_only_after_its_grace_period() -> None:
    w = make_world()
    log: list[str] = []
    queue_callback(w, 0, RcuHead("a"), recorder(log, "a"), "a")
    assert not w.rcu.has_ready(0)
    assert w.rcu.needs_grace_period()
    assert softirq(w, 0).done
    assert log == []  # nothing was ready
    w.rcu.start_gp()
    queue_callback(w, 0, RcuHead("b"), recorder(log, "b"), "b")  # during the GP: needs the next
    w.rcu.end_gp()
    assert w.rcu.has_ready(0)
    softirq(w, 0)
    assert log == ["a@CPU0/softirq"]
    assert not w.rcu.has_ready(0) and w.rcu.needs_grace_period()
    grace_period(w)
    softirq(w, 0)
    assert log == ["a@CPU0/softirq", "b@CPU0/softirq"]
    assert not w.rcu.needs_grace_period() and w.rcu.pending() == []


def test_callbacks_run_on_the_cpu_that_queued_them_in_queue_order() -> None:
    w = make_world()
    log: list[str] = []
    for name in ("a", "b", "c"):
        queue_callback(w, 0, RcuHead(name), recorder(log, name), name)
    queue_callback(w, 1, RcuHead("x"), recorder(log, "x"), "x")
    grace_period(w)
    assert w.rcu.has_ready(0) and w.rcu.has_ready(1)
    softirq(w, 1)
    assert log == ["x@CPU1/softirq"]
    softirq(w, 0)
    assert log == ["x@CPU1/softirq", "a@CPU0/softirq", "b@CPU0/softirq", "c@CPU0/softirq"]


def test_a_softirq_on_top_of_a_reader_runs_callbacks_without_ending_any_gp() -> None:
    w = make_world()
    log: list[str] = []
    queue_callback(w, 0, RcuHead("a"), recorder(log, "a"), "a")
    reader = w.start_task(w.cpus[0], "reader", read_section())
    assert w.advance(reader)
    w.rcu.start_gp()
    softirq(w, 0)
    assert log == []  # the grace period cannot end under the reader
    assert not w.rcu.may_end_gp()


# --- rcu-head-reuse ---------------------------------------------------------


def test_call_rcu_twice_on_a_queued_rcu_head_is_rcu_head_reuse() -> None:
    w = make_world()
    head = RcuHead("batch->rcu")
    log: list[str] = []
    queue_callback(w, 0, head, recorder(log, "first"), "first")
    with pytest.raises(RcuHeadReuse, match=r"ODEBUG: activate active .*batch->rcu.*rcu_head"):
        queue_callback(w, 1, head, recorder(log, "second"), "second")


def test_call_rcu_twice_on_a_page_rcu_head_is_rcu_head_reuse() -> None:
    w = make_world()
    page = new_page(w)
    log: list[str] = []
    queue_callback(w, 0, page.rcu_head, recorder(log, "first"), "first")
    with pytest.raises(RcuHeadReuse, match=r"ODEBUG: activate active .*P0->rcu_head"):
        queue_callback(w, 0, page.rcu_head, recorder(log, "second"), "second")


def test_an_rcu_head_may_be_queued_again_once_its_callback_has_run() -> None:
    w = make_world()
    head = RcuHead("head")
    page = new_page(w)
    log: list[str] = []
    queue_callback(w, 0, head, recorder(log, "h1"), "h1")
    queue_callback(w, 0, page.rcu_head, recorder(log, "p1"), "p1")
    grace_period(w)
    softirq(w, 0)
    assert not head.queued
    queue_callback(w, 1, head, recorder(log, "h2"), "h2")
    queue_callback(w, 1, page.rcu_head, recorder(log, "p2"), "p2")
    grace_period(w)
    softirq(w, 1)
    assert log == ["h1@CPU0/softirq", "p1@CPU0/softirq", "h2@CPU1/softirq", "p2@CPU1/softirq"]
    assert w.reports == []
