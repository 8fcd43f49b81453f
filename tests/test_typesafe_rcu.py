"""typesafe-rcu: the thread's open question, as scripted interleavings of the machine.

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
from collections.abc import Sequence

import pytest
from hypothesis.stateful import RULE_MARKER

from designs.base import Design
from designs.hugh_hh import HughHH
from designs.typesafe_rcu import PgtableList, TypesafeRcu, pgtable_list_ctor
from stateful.kernel import api as k
from stateful.machine import KernelMachine, machine_for
from stateful.replay import Step, replay
from stateful.violations import UseAfterFree


class PlainCache(TypesafeRcu):
    """typesafe-rcu with a plain kmem cache: the struct is poisoned at kmem_cache_free."""

    name = "typesafe-rcu-plain-cache"

    def __init__(self) -> None:
        self.pgtable_list_cachep = k.kmem_cache_create(
            "pgtable_list", PgtableList, typesafe_by_rcu=False, ctor=pgtable_list_ctor
        )


class LockAlways(TypesafeRcu):
    """typesafe-rcu whose __tlb_remove_table locks page->pt_mm without the atomic_read
    first: it would rely on a queued callback holding off the slab's grace period."""

    name = "typesafe-rcu-lock-always"

    def tlb_remove_table(self, tagged: k.Tagged) -> k.Steps[None]:
        page, half = tagged.page, tagged.tag
        assert half != 0x03, "the scenarios have no PGSTE tables"
        pt = yield from k.read_pt_mm(page)
        yield from k.spin_lock_bh(pt.lock)
        mask = yield from k.atomic_xor_bits(page, half << (4 + 24))
        mask >>= 24
        if mask & 0x03:
            yield from k.list_add(page, pt.list)
        yield from k.spin_unlock_bh(pt.lock)
        if mask == 0:
            yield from k.free_page(page)


def alloc() -> Step:
    return Step.of("page_table_alloc", {"cpu": 0, "irq": 0, "mm": 0, "pause": 0})


def free_tlb(cpu: int = 0) -> Step:
    args = {"batch_alloc_fails": False, "cpu": cpu, "irq": 0, "pause": 0, "table": 0}
    return Step.of("pte_free_tlb", args)


def exit_mm(cpu: int = 0) -> Step:
    args = {"batch_alloc_fails": False, "cpu": cpu, "irq": 0, "mm": 0, "pause": 0}
    return Step.of("mm_exit", args)


def softirq(pause: int = 0) -> Step:
    return Step.of("softirq", {"which": 0, "pause": pause})


MM_CREATE = Step.of("mm_create", {"cpu": 0, "irq": 0, "pause": 0, "pgste": False})
RESUME = Step.of("resume", {"which": 0, "irq": 0, "pause": 0})

# mm1 owns both halves of P2; munmap frees P2.hi through the mmu_gather; its
# __tlb_remove_table runs in softirq on CPU0 and pauses after its atomic_read
# saw P2.lo allocated (0x21) and it read P2->pt_mm = pt1. mm1 exits on CPU1:
# P2.lo is freed, destroy_context frees pt1 (rcu_free_slab queued on CPU1).
STALE_LOCKER = [alloc(), alloc(), free_tlb(), softirq(pause=2), exit_mm()]
# ... then fork: mm2's init_context is handed pt1 at once, and the paused
# __tlb_remove_table goes on to take pt1's lock, which is now mm2's.
STRUCT_REUSED = [*STALE_LOCKER, MM_CREATE, RESUME]
# munmap of P2.hi on CPU1 queues its __tlb_remove_table there; mm1 exits on
# CPU0 (P2.lo, then pt1's rcu_free_slab, both queued on CPU0); after the grace
# period CPU0's softirq gives pt1's slab back while CPU1's callback is queued.
SLAB_RETURNED = [alloc(), alloc(), free_tlb(cpu=1), exit_mm(cpu=1), softirq()]


def drive(design: type[Design], steps: Sequence[Step]) -> KernelMachine:
    """The machine after `steps`, before its teardown; a violation raises."""
    machine = machine_for(design, None)()
    for step in steps:
        spec = getattr(getattr(type(machine), step.rule), RULE_MARKER)
        assert all(pre(machine) for pre in spec.preconditions), f"{step} is not enabled"
        getattr(machine, step.rule)(**dict(step.args))
        machine.design_invariants()
    return machine


def pt_of(machine: KernelMachine, mm_name: str) -> PgtableList:
    mm = next(mm for mm in machine.world.mms if mm.name == mm_name)
    pt = mm.context.arch["pgtable_list"]
    assert isinstance(pt, PgtableList)
    return pt


def trace(machine: KernelMachine) -> str:
    """The trace, one event a line, unwrapped (the diagram wraps long lines)."""
    return "\n".join(event.text for event in machine.world.trace.events)


def in_order(text: str, *parts: str) -> bool:
    at = 0
    for part in parts:
        at = text.find(part, at)
        if at < 0:
            return False
    return True


# --- the struct freed and reused by another mm ------------------------------


def test_stale_locker_holds_off_the_slab_of_the_freed_struct() -> None:
    """pt1 is free, its mm is gone, but the softirq that saw the AA bit is a reader."""
    machine = drive(TypesafeRcu, STALE_LOCKER)
    w = machine.world
    pt1 = pt_of(machine, "mm1")
    stale = w.cpus[0].softirq
    assert stale is not None and not stale.done
    assert not pt1.allocated and not pt1.freed and pt1.slab_rcu is not None
    assert w.rcu.in_progress and not w.rcu.may_end_gp()  # rcu_free_slab must wait
    machine.resume(which=0, irq=0, pause=0)
    assert stale.done and not pt1.freed
    assert in_order(trace(machine), "spin_lock_bh(&pt1->lock)", "atomic_xor_bits(P2, 0x20) -> 0x10")
    machine.teardown()
    assert not machine.ended and pt1.freed and w.allocator.live == {}


def test_stale_locker_takes_the_lock_of_the_struct_reused_by_a_new_mm_and_finds_aa_clear() -> None:
    machine = drive(TypesafeRcu, STRUCT_REUSED)
    pt1 = pt_of(machine, "mm1")
    assert pt_of(machine, "mm2") is pt1 and pt1.allocated  # reused by mm2 at once
    text = trace(machine)
    assert in_order(
        text,
        "atomic_read(P2) -> 0x21",
        "kmem_cache_free(pgtable_list, pt1)",
        "kmem_cache_alloc(pgtable_list) -> pt1 (reused",
        "spin_lock_bh(&pt1->lock)",
        "atomic_xor_bits(P2, 0x20) -> 0x10",  # AA clear under the lock: no list_add
        "spin_unlock_bh(&pt1->lock",
    ), text
    assert pt1.list.entries == []
    machine.teardown()
    assert not machine.ended and machine.world.allocator.live == {}


def test_struct_reused_replays_clean_on_typesafe_rcu() -> None:
    outcome = replay(machine_for(TypesafeRcu, None), STRUCT_REUSED)
    assert outcome.violation is None and outcome.skipped == 0


@pytest.mark.parametrize(
    ("design", "wording"),
    [
        (HughHH, r"slab-use-after-free in spin_lock_bh\(&mm1->context\.lock\)"),
        (PlainCache, r"use-after-free in spin_lock_bh\(&pt1->lock\) .* in kmem_cache_free"),
    ],
    ids=["hugh-hh", "plain-cache"],
)
def test_the_same_interleaving_is_use_after_free_without_a_typesafe_struct(
    design: type[Design], wording: str
) -> None:
    outcome = replay(machine_for(design, None), STRUCT_REUSED)
    assert outcome.skipped == 0
    assert isinstance(outcome.violation, UseAfterFree)
    assert re.search(wording, str(outcome.violation)), outcome.violation


# --- the slab given back while a __tlb_remove_table is queued elsewhere -----


def test_slab_goes_back_while_a_tlb_remove_table_is_queued_on_the_other_cpu() -> None:
    machine = drive(TypesafeRcu, SLAB_RETURNED)
    w = machine.world
    pt1 = pt_of(machine, "mm1")
    assert pt1.freed and pt1.slab is not None and pt1.slab.freed  # rcu_free_slab ran on CPU0
    queued = [cb.label for cb in w.rcu.queues.get(1, [])]
    assert queued == ["tlb_remove_table_rcu([P2.hi])"], queued
    # The queued callback has not read the bits: they are clear now, so it
    # will not follow page->pt_mm at all.
    page = next(p for p in w.allocator.live.values() if p.name == "P2")
    assert page.refbyte == 0x20
    machine.teardown()
    assert not machine.ended and w.allocator.live == {}
    assert in_order(
        trace(machine),
        "__free_page(P1)",  # pt1's slab
        "__tlb_remove_table(P2.hi)",
        "atomic_read(P2) -> 0x20",
        "atomic_xor_bits(P2, 0x20) -> 0x00",
        "__free_page(P2)",
    )


def test_a_queued_callback_is_no_reader_the_slab_does_not_wait_for_it() -> None:
    """Without the atomic_read, the queued __tlb_remove_table locks freed memory."""
    outcome = replay(machine_for(LockAlways, None), SLAB_RETURNED)
    assert outcome.skipped == 0
    assert isinstance(outcome.violation, UseAfterFree)
    assert re.search(
        r"use-after-free in spin_lock_bh\(&pt1->lock\) by CPU1/softirq:rcu_core: pt1 was "
        r"freed by CPU0/softirq:rcu_core in rcu_free_slab",
        str(outcome.violation),
    ), outcome.violation


# --- the design's own invariants ------------------------------------------------


def test_invariants_hold_on_a_listed_page_and_fire_when_a_free_struct_keeps_it() -> None:
    machine = drive(TypesafeRcu, [alloc()])
    design = machine.world.design
    pt1 = pt_of(machine, "mm1")
    assert [p.name for p in pt1.list.entries] == ["P2"]  # one half allocated: fine
    assert list(design.invariants(machine.world)) == []
    pt1.allocated = False  # as if destroy_context had freed it with P2 still listed
    assert [p for p in design.invariants(machine.world) if "inherits" in p] == [
        "pt1 is free (kmem_cache_free) with [P2] still on pt1->list: "
        "the next mm to get it inherits them"
    ]
    pt1.list.entries[0].refbyte = 0x03
    assert any("_refcount byte 0x03" in p for p in design.invariants(machine.world))
