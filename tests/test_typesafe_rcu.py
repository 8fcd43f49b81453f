"""typesafe-rcu (Hugh's posted 13/12): the thread's open question, as scripted interleavings.

"Is typesafe-rcu safe, including when the mm's struct has been freed and
reused by another mm, and when its memory could go back to the page
allocator while a __tlb_remove_table is still queued on another CPU?"

Each scenario is a sequence of machine rules (as stateful/replay.py replays
them), driven step by step so that the test can check that the situation
was really reached before it checks the outcome. Beside typesafe-rcu, the
same sequence runs on a design that lacks the piece the answer rests on,
where it must fail: the machine reaches the situation and would see the bug.
"""

from __future__ import annotations

import re

import pytest

from designs.base import HH, Design
from designs.hugh_hh import HughHH
from designs.typesafe_rcu import PgtableList, TypesafeRcu
from stateful.kernel import api as k
from stateful.machine import KernelMachine, machine_for
from stateful.replay import Step, replay
from stateful.violations import Leak, UseAfterFree
from tests.kernel_helpers import drive, in_order, trace_text


class PlainCache(TypesafeRcu):
    """The posted code with a plain kmem cache: the struct is poisoned at kmem_cache_free."""

    name = "typesafe-rcu-plain-cache"
    typesafe_by_rcu = False


class LockAlways(TypesafeRcu):
    """The posted __tlb_remove_table without its atomic_read test: it locks
    page->pt_list whatever the bits say, as if a queued callback held off the
    slab's grace period."""

    name = "typesafe-rcu-lock-always"

    def tlb_remove_table(self, tagged: k.Tagged) -> k.Steps[None]:
        page = tagged.page
        mask = tagged.tag
        assert mask != 0x03, "the scenarios have no PGSTE tables"
        yield from k.rcu_read_lock()
        pgtable_list = yield from k.read_pt_mm(page, member="pt_list")
        yield from k.spin_lock_bh(pgtable_list.lock)
        mask = yield from k.atomic_xor_bits(page, mask << 28)
        mask >>= 24
        if mask & 0x03:
            yield from k.list_add(page, pgtable_list.list)
        yield from k.spin_unlock_bh(pgtable_list.lock)
        yield from k.rcu_read_unlock()
        if mask == 0:
            yield from k.free_page(page)


class Intended(TypesafeRcu):
    """pte_free_half with the `mask >>= 24` the posted C lacks."""

    name = "typesafe-rcu-intended-shift"

    def pte_free_half(self, head: k.PageRcuHead, bit: int) -> k.Steps[None]:
        page = head.page
        mask = yield from k.atomic_xor_bits(page, HH << (bit + 24))
        mask >>= 24
        yield from k.hook("tlb_remove_table", k.tagged(page, 1 << bit))
        if mask & 0x0C:
            yield from k.call_rcu(page.rcu_head, self.pte_free_now[bit ^ 1])


def alloc() -> Step:
    return Step.of("page_table_alloc", {"cpu": 0, "irq": 0, "mm": 0, "pause": 0})


def free_tlb(cpu: int = 0) -> Step:
    args = {"batch_alloc_fails": False, "cpu": cpu, "irq": 0, "pause": 0, "table": 0}
    return Step.of("pte_free_tlb", args)


def defer() -> Step:
    return Step.of("pte_free_defer", {"cpu": 0, "irq": 0, "pause": 0, "table": 0})


def exit_mm(cpu: int = 0) -> Step:
    args = {"batch_alloc_fails": False, "cpu": cpu, "irq": 0, "mm": 0, "pause": 0}
    return Step.of("mm_exit", args)


def softirq(pause: int = 0) -> Step:
    return Step.of("softirq", {"which": 0, "pause": pause})


MM_CREATE = Step.of("mm_create", {"cpu": 0, "irq": 0, "pause": 0, "pgste": False})
RESUME = Step.of("resume", {"which": 0, "irq": 0, "pause": 0})


def stale_locker(read_steps: int) -> list[Step]:
    """mm1 owns both halves of P2; munmap frees P2.hi through the mmu_gather;
    its __tlb_remove_table runs in softirq on CPU0 and pauses once it has seen
    P2.lo allocated (0x21) and read P2's back pointer (`read_steps` steps into
    the softirq). mm1 exits on CPU1: P2.lo is freed, then destroy_context
    frees mm1's struct."""
    return [alloc(), alloc(), free_tlb(), softirq(pause=read_steps), exit_mm()]


# typesafe-rcu: rcu_read_lock(), atomic_read, P2->pt_list -> pt1.
STALE_LOCKER = stale_locker(3)
# ... then fork: mm2's init_new_context is handed pt1 at once, and the paused
# __tlb_remove_table goes on to take pt1's lock, which is now mm2's.
STRUCT_REUSED = [*STALE_LOCKER, MM_CREATE, RESUME]
# munmap of P2.hi on CPU1 queues its __tlb_remove_table there; mm1 exits on
# CPU0 (P2.lo, then pt1's rcu_free_slab, both queued on CPU0); after the grace
# period CPU0's softirq gives pt1's slab back while CPU1's callback is queued.
SLAB_RETURNED = [alloc(), alloc(), free_tlb(cpu=1), exit_mm(cpu=1), softirq()]
# khugepaged retracts both halves of P2 (mm1's) within one grace period: the
# second pte_free_defer finds the first's HH bit and leaves its call_rcu to
# the first's pte_free_half.
BOTH_HALVES_DEFERRED = [alloc(), alloc(), defer(), defer()]


def pgtable_list_of(machine: KernelMachine, mm_name: str) -> PgtableList:
    mm = next(mm for mm in machine.world.mms if mm.name == mm_name)
    pgtable_list = mm.context.arch["pgtable_list"]
    assert isinstance(pgtable_list, PgtableList)
    return pgtable_list


def trace(machine: KernelMachine) -> str:
    return trace_text(machine.world)


# --- the struct and its cache, as posted ------------------------------------


def test_each_mm_gets_a_struct_whose_constructor_ran_once_when_its_slab_was_made() -> None:
    machine = drive(TypesafeRcu, [MM_CREATE])
    cache = machine.world.design.pgtable_list_cachep
    assert cache is not None and cache.typesafe_by_rcu and cache.ctor is not None
    pt2 = pgtable_list_of(machine, "mm2")
    assert pt2.allocated and pt2.list.initialised and pt2.list.entries == []
    assert in_order(
        trace(machine),
        "kmem_cache_alloc(pgtable_list) -> pt2 (new slab",
        "INIT_LIST_HEAD(pt2->list)",
        "spin_lock_init(&pt2->lock)",
    ), trace(machine)


def test_a_new_page_points_to_the_struct_not_the_mm_and_lists_under_its_lock() -> None:
    machine = drive(TypesafeRcu, [alloc()])
    pt1 = pgtable_list_of(machine, "mm1")
    page = pt1.list.entries[0]
    assert page.pt_mm is pt1
    assert in_order(
        trace(machine),
        "spin_lock_bh(&pt1->lock)",
        "list_first_entry(pt1->list) -> NULL",
        f"{page}->pt_list = pt1",
        f"list_add({page}->lru, pt1->list)",
    ), trace(machine)


# --- the struct freed and reused by another mm ------------------------------


def test_stale_locker_is_an_rcu_reader_so_the_slab_of_the_freed_struct_stays() -> None:
    """pt1 is free and its mm gone; the softirq that read P2->pt_list is inside rcu_read_lock()."""
    machine = drive(TypesafeRcu, STALE_LOCKER)
    w = machine.world
    pt1 = pgtable_list_of(machine, "mm1")
    stale = w.cpus[0].softirq
    assert stale is not None and not stale.done and stale in w.rcu.readers
    text = trace(machine)
    assert in_order(text, "rcu_read_lock()", "atomic_read(P2) -> 0x21", "P2->pt_list -> pt1")
    assert not pt1.allocated and not pt1.freed and pt1.slab_rcu is not None
    assert w.rcu.in_progress and not w.rcu.may_end_gp()  # rcu_free_slab must wait
    machine.resume(which=0, irq=0, pause=0)
    assert stale.done and not pt1.freed
    assert in_order(
        trace(machine),
        "spin_lock_bh(&pt1->lock)",
        "atomic_xor_bits(P2, 0x20) -> 0x10",
        "spin_unlock_bh(&pt1->lock)",
        "rcu_read_unlock()",
    )
    machine.teardown()
    assert not machine.ended and pt1.freed and w.allocator.live == {}


def test_stale_locker_takes_the_lock_of_the_struct_reused_by_a_new_mm_and_finds_aa_clear() -> None:
    machine = drive(TypesafeRcu, STRUCT_REUSED)
    pt1 = pgtable_list_of(machine, "mm1")
    assert pgtable_list_of(machine, "mm2") is pt1 and pt1.allocated  # reused by mm2 at once
    text = trace(machine)
    assert in_order(
        text,
        "P2->pt_list -> pt1",
        "kmem_cache_free(pgtable_list, pt1)",
        "kmem_cache_alloc(pgtable_list) -> pt1 (reused",
        "spin_lock_bh(&pt1->lock)",
        "atomic_xor_bits(P2, 0x20) -> 0x10",  # AA clear under the lock: no list_add
        "spin_unlock_bh(&pt1->lock",
    ), text
    reuse = text.index("kmem_cache_alloc(pgtable_list) -> pt1 (reused")
    assert "INIT_LIST_HEAD(pt1->list)" not in text[reuse:]  # no constructor on reuse
    assert "spin_lock_init(&pt1->lock)" not in text[reuse:]
    assert pt1.list.entries == []
    machine.teardown()
    assert not machine.ended and machine.world.allocator.live == {}


def test_struct_reused_replays_clean_on_typesafe_rcu() -> None:
    outcome = replay(machine_for(TypesafeRcu, None), STRUCT_REUSED)
    assert outcome.violation is None and outcome.skipped == 0


@pytest.mark.parametrize(
    ("design", "read_steps", "wording"),
    [
        # hugh-hh's __tlb_remove_table: atomic_read, P2->pt_mm -> mm1.
        (HughHH, 2, r"slab-use-after-free in spin_lock_bh\(&mm1->context\.lock\)"),
        (PlainCache, 3, r"use-after-free in spin_lock_bh\(&pt1->lock\) .* in kmem_cache_free"),
    ],
    ids=["hugh-hh", "plain-cache"],
)
def test_the_same_interleaving_is_use_after_free_without_a_typesafe_struct(
    design: type[Design], read_steps: int, wording: str
) -> None:
    outcome = replay(machine_for(design, None), [*stale_locker(read_steps), MM_CREATE, RESUME])
    assert outcome.skipped == 0
    assert isinstance(outcome.violation, UseAfterFree)
    assert re.search(wording, str(outcome.violation)), outcome.violation


# --- the slab given back while a __tlb_remove_table is queued elsewhere -----


def test_slab_goes_back_while_a_tlb_remove_table_is_queued_on_the_other_cpu() -> None:
    machine = drive(TypesafeRcu, SLAB_RETURNED)
    w = machine.world
    pt1 = pgtable_list_of(machine, "mm1")
    assert pt1.freed and pt1.slab is not None and pt1.slab.freed  # rcu_free_slab ran on CPU0
    queued = [cb.label for cb in w.rcu.queues.get(1, [])]
    assert queued == ["tlb_remove_table_rcu([P2.hi])"], queued
    # The queued callback has not read the bits: they are clear now, so it
    # will not follow page->pt_list at all.
    page = next(p for p in w.allocator.live.values() if p.name == "P2")
    assert page.refbyte == 0x20
    machine.teardown()
    assert not machine.ended and w.allocator.live == {}
    assert in_order(
        trace(machine),
        "__free_page(P1)",  # pt1's slab
        "__tlb_remove_table(P2.hi)",
        "rcu_read_lock()",
        "atomic_read(P2) -> 0x20",
        "atomic_xor_bits(P2, 0x20) -> 0x00",
        "rcu_read_unlock()",
        "__free_page(P2)",
    )


def test_a_queued_callback_is_no_reader_the_slab_does_not_wait_for_it() -> None:
    """Without the atomic_read, the queued __tlb_remove_table locks freed memory,
    rcu_read_lock() or not: its section starts after the slab's grace period."""
    outcome = replay(machine_for(LockAlways, None), SLAB_RETURNED)
    assert outcome.skipped == 0
    assert isinstance(outcome.violation, UseAfterFree)
    assert re.search(
        r"use-after-free in spin_lock_bh\(&pt1->lock\) by CPU1/softirq:rcu_core: pt1 was "
        r"freed by CPU0/softirq:rcu_core in rcu_free_slab",
        str(outcome.violation),
    ), outcome.violation


# --- v2's pte_free_half, as posted ----------------------------------------------


def test_both_halves_deferred_in_one_grace_period_leak_the_page() -> None:
    """The posted `if (mask & 0x0CU)` tests _refcount's low bits (the page's own
    count, 1), not the HH bits: the first pte_free_half never queues the
    second half's, whose HH and PP bits stay set for ever."""
    machine = drive(TypesafeRcu, BOTH_HALVES_DEFERRED)
    text = trace(machine)
    assert in_order(
        text,
        "atomic_xor_bits(P2, 0x2a) -> 0x29",
        "call_rcu(P2->rcu_head, pte_free_now1)",
        "atomic_xor_bits(P2, 0x15) -> 0x3c",  # HH of both halves: no second call_rcu
    ), text
    assert text.count("call_rcu(P2->rcu_head") == 1
    outcome = replay(machine_for(TypesafeRcu, None), BOTH_HALVES_DEFERRED)
    assert isinstance(outcome.violation, Leak)
    assert "P2 (pgtable, _refcount byte 0x14)" in str(outcome.violation), outcome.violation
    assert "call_rcu(P2->rcu_head, pte_free_now0)" not in trace(outcome.machine)


def test_with_the_shift_the_second_half_is_queued_and_the_page_freed() -> None:
    outcome = replay(machine_for(Intended, None), BOTH_HALVES_DEFERRED)
    assert outcome.violation is None and outcome.skipped == 0
    assert in_order(
        trace(outcome.machine),
        "pte_free_now1(P2->rcu_head)",
        "call_rcu(P2->rcu_head, pte_free_now0)",
        "pte_free_now0(P2->rcu_head)",
        "__free_page(P2)",
    )


# --- the design's own invariants ------------------------------------------------


def test_invariants_hold_on_a_listed_page_and_fire_when_a_free_struct_keeps_it() -> None:
    machine = drive(TypesafeRcu, [alloc()])
    design = machine.world.design
    pt1 = pgtable_list_of(machine, "mm1")
    assert [p.name for p in pt1.list.entries] == ["P2"]  # one half allocated: fine
    assert list(design.invariants(machine.world)) == []
    pt1.allocated = False  # as if destroy_context had freed it with P2 still listed
    assert [p for p in design.invariants(machine.world) if "inherits" in p] == [
        "pt1 is free (kmem_cache_free) with [P2] still on pt1->list: "
        "the next mm to get it inherits them"
    ]
    pt1.list.entries[0].refbyte = 0x03
    assert any("_refcount byte 0x03" in p for p in design.invariants(machine.world))
