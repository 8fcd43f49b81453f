"""gerald-v2 (Gerald's 28 Jun 2023 version of [PATCH v2 07/12]), as scripted interleavings.

The list status of a page lives in page->pt_frag_refcount: 1 from each
list_add, 0 from each list_del, and every freeing path reads it before its
list_del. The scenarios check that a page is listed and unlisted as the
posted code says, run the interleaving Gerald feared for his first version
("two allocated fragments, and both should be freed via pte_free_defer(),
we might end up with a list_del() although there never was a list_add()")
on both versions, and show what the machine found instead: the posted
pte_free_half never queues the second of two halves deferred in one grace
period, so that page leaks.
"""

from __future__ import annotations

from designs.base import HH
from designs.gerald import Gerald
from designs.gerald_v2 import GeraldV2
from stateful.kernel import api as k
from stateful.kernel.memory import Page, Table
from stateful.kernel.mm import MMStruct
from stateful.kernel.world import KernelConfig, World
from stateful.machine import KernelMachine, machine_for
from stateful.replay import Step, replay
from stateful.violations import Leak, ListCorruption
from tests.kernel_helpers import drive, grace_period, in_order, run_task, softirq, trace_text


class Intended(GeraldV2):
    """pte_free_half with the `mask >>= 24` the posted C lacks."""

    name = "gerald-v2-intended-shift"

    def pte_free_half(self, head: k.PageRcuHead, bit: int) -> k.Steps[None]:
        page = head.page
        mask = yield from k.atomic_xor_bits(page, HH << (bit + 24))
        mask >>= 24
        yield from k.hook("tlb_remove_table", k.tagged(page, 1 << bit))
        if mask & 0x0C:
            yield from k.call_rcu(page.rcu_head, self.pte_free_now[bit ^ 1])


def op(rule: str, **args: int) -> Step:
    return Step.of(rule, {"cpu": 0, "irq": 0, "pause": 0, **args})


ALLOC = op("page_table_alloc", mm=0)
DEFER = op("pte_free_defer", table=0)
SOFTIRQ = Step.of("softirq", {"which": 0, "pause": 0})
# An RCU walker of P0.lo, interrupted after its first step: the ready
# pte_free_now1 runs in softirq on top of it (the search found it this way).
WALKER_IRQ = op("rcu_walker", table=0, irq=1)

# Gerald's first version, as the machine found it (replays/gerald--list-corruption.json):
# both halves allocated, the upper retracted by khugepaged; its pte_free_half
# clears HH and PP, leaving the page off the list; then munmap of the lower.
FIRST_VERSION_BUG = [ALLOC, ALLOC, DEFER, WALKER_IRQ]
# Gerald's worry in his words: both fragments through pte_free_defer, the
# second after the first's callback has cleared its HH bit.
BOTH_DEFERRED_ONE_AFTER_THE_OTHER = [ALLOC, ALLOC, DEFER, SOFTIRQ, DEFER]
# Both fragments through pte_free_defer within one grace period.
BOTH_DEFERRED_IN_ONE_GRACE_PERIOD = [ALLOC, ALLOC, DEFER, DEFER]


def trace(machine: KernelMachine) -> str:
    return trace_text(machine.world)


def page_named(machine: KernelMachine, name: str) -> Page:
    return next(p for p in machine.world.allocator.live.values() if p.name == name)


def listed(page: Page) -> bool:
    return page.list_of is not None


# --- the list status, as the posted code keeps it ---------------------------


def kernel() -> tuple[World, MMStruct]:
    """A machine running gerald-v2 with one mm, its hooks called one at a time."""
    w = World.for_design(GeraldV2, KernelConfig(ncpus=2))
    mm = w.mm_alloc("mm0", pgste=False)
    run_task(w, w.hook("init_context", mm), label="fork")
    return w, mm


def call(w: World, hook: str, *args: object) -> object:
    return run_task(w, w.hook(hook, *args), label=hook)


def both_halves(w: World, mm: MMStruct) -> tuple[Table, Table]:
    lower, upper = call(w, "page_table_alloc", mm), call(w, "page_table_alloc", mm)
    assert isinstance(lower, Table) and isinstance(upper, Table)
    assert lower.page is upper.page and (lower.bit, upper.bit) == (0, 1)
    return lower, upper


def steps(w: World) -> str:
    return "\n".join(e.text.strip() for e in w.trace.events if e.kind == "step")


def test_a_fresh_page_is_listed_with_pt_frag_refcount_1() -> None:
    w, mm = kernel()
    table = call(w, "page_table_alloc", mm)
    assert isinstance(table, Table)
    page = table.page
    assert listed(page) and page.pt_mm == 1 and page.refbyte == 0x01
    assert in_order(
        steps(w),
        "list_add(P0->lru, mm0->context.pgtable_list)",
        "atomic_set(&P0->pt_frag_refcount, 1)",
        "spin_unlock_bh(&mm0->context.lock)",
    ), steps(w)


def test_the_second_half_taken_unlists_the_page_with_pt_frag_refcount_0() -> None:
    w, mm = kernel()
    lower, _ = both_halves(w, mm)
    page = lower.page
    assert not listed(page) and page.pt_mm == 0 and page.refbyte == 0x03


def test_freeing_a_half_of_a_full_page_relists_it() -> None:
    w, mm = kernel()
    _, upper = both_halves(w, mm)
    page = upper.page
    w.trace.events.clear()
    call(w, "page_table_free", mm, upper)
    assert listed(page) and page.pt_mm == 1 and page.refbyte == 0x01
    assert in_order(
        steps(w),
        "atomic_xor_bits(P0, 0x22) -> 0x21",  # the temporary PP of c2c224932fd0
        "list_add(P0->lru, mm0->context.pgtable_list)",
        "atomic_set(&P0->pt_frag_refcount, 1)",
        "atomic_xor_bits(P0, 0x20) -> 0x01",
    ), steps(w)


def test_pte_free_defer_unlists_a_listed_page_and_never_relists_it() -> None:
    w, mm = kernel()
    lower, upper = both_halves(w, mm)
    page = lower.page
    call(w, "page_table_free", mm, upper)
    w.trace.events.clear()
    call(w, "pte_free_defer", mm, lower)
    assert not listed(page) and page.pt_mm == 0 and page.refbyte == 0x14
    assert in_order(
        steps(w),
        "atomic_xor_bits(P0, 0x15) -> 0x14",
        "atomic_read(&P0->pt_frag_refcount) -> 1",
        "list_del(P0->lru)",
        "atomic_set(&P0->pt_frag_refcount, 0)",
        "atomic_read(&P0->pt_frag_refcount) -> 0",  # BUG_ON's
        "spin_unlock_bh(&mm0->context.lock)",
        "call_rcu(P0->rcu_head, pte_free_now0)",
    ), steps(w)
    grace_period(w)
    assert softirq(w, cpu=0).done
    assert page.freed and "list_add" not in steps(w)


def test_a_half_deferred_beside_an_allocated_one_leaves_the_page_off_the_list() -> None:
    """The wasted half: after its grace period it is free, but not reusable."""
    w, mm = kernel()
    lower, upper = both_halves(w, mm)
    page = upper.page
    call(w, "pte_free_defer", mm, upper)
    grace_period(w)
    assert softirq(w, cpu=0).done
    assert page.refbyte == 0x01 and not listed(page) and page.pt_mm == 0
    assert mm.context.pgtable_list.entries == []
    again = call(w, "page_table_alloc", mm)  # a fresh page, not P0's free half
    assert isinstance(again, Table) and again.page is not page


# --- the interleaving Gerald feared --------------------------------------------


def test_gerald_v1_list_dels_a_page_pte_free_defer_left_off_the_list() -> None:
    outcome = replay(machine_for(Gerald, None), FIRST_VERSION_BUG)
    assert outcome.skipped == 0
    assert isinstance(outcome.violation, ListCorruption), outcome.violation


def test_gerald_v2_reads_pt_frag_refcount_and_does_not_list_del() -> None:
    outcome = replay(machine_for(GeraldV2, None), FIRST_VERSION_BUG)
    assert outcome.violation is None and outcome.skipped == 0
    assert in_order(
        trace(outcome.machine),
        "pte_free_now1(P0->rcu_head)",
        "page_table_free_rcu(tlb(mm1), P0.lo)",
        "atomic_xor_bits(P0, 0x11) -> 0x10",
        "atomic_read(&P0->pt_frag_refcount) -> 0",
        "spin_unlock_bh(&mm1->context.lock)",
    ), trace(outcome.machine)
    assert outcome.machine.world.allocator.live == {}


def test_both_halves_deferred_one_after_the_other() -> None:
    """Gerald's own example: a list_del without list_add in v1, none in v2."""
    v1 = replay(machine_for(Gerald, None), BOTH_DEFERRED_ONE_AFTER_THE_OTHER)
    assert v1.skipped == 0 and isinstance(v1.violation, ListCorruption), v1.violation
    v2 = replay(machine_for(GeraldV2, None), BOTH_DEFERRED_ONE_AFTER_THE_OTHER)
    assert v2.violation is None and v2.skipped == 0
    text = trace(v2.machine)
    assert in_order(
        text,
        "pte_free_now1(P0->rcu_head)",
        "atomic_xor_bits(P0, 0x15) -> 0x14",
        "atomic_read(&P0->pt_frag_refcount) -> 0",
        "call_rcu(P0->rcu_head, pte_free_now0)",
        "__free_page(P0)",
    ), text
    assert text.count("list_del(P0->lru)") == 1  # page_table_alloc's only


# --- what the machine found: the posted pte_free_half ---------------------------


def test_both_halves_deferred_in_one_grace_period_leak_the_page() -> None:
    """The posted `if (mask & 0x0CU)` tests _refcount's low bits (the page's own
    count, 1), not the HH bits: the second half's free is never queued."""
    outcome = replay(machine_for(GeraldV2, None), BOTH_DEFERRED_IN_ONE_GRACE_PERIOD)
    assert outcome.skipped == 0
    assert isinstance(outcome.violation, Leak), outcome.violation
    assert "P0 (pgtable, _refcount byte 0x14)" in str(outcome.violation)
    text = trace(outcome.machine)
    assert in_order(
        text,
        "call_rcu(P0->rcu_head, pte_free_now1)",
        "atomic_xor_bits(P0, 0x15) -> 0x3c",  # both HH bits: no second call_rcu
        "pte_free_now1(P0->rcu_head)",
        "atomic_xor_bits(P0, 0x08) -> 0x34",
        "atomic_xor_bits(P0, 0x20) -> 0x14",
    ), text
    assert "pte_free_now0" not in text


def test_with_the_shift_the_second_half_is_queued_and_the_page_freed() -> None:
    outcome = replay(machine_for(Intended, None), BOTH_DEFERRED_IN_ONE_GRACE_PERIOD)
    assert outcome.violation is None and outcome.skipped == 0
    assert in_order(
        trace(outcome.machine),
        "pte_free_now1(P0->rcu_head)",
        "call_rcu(P0->rcu_head, pte_free_now0)",
        "pte_free_now0(P0->rcu_head)",
        "__free_page(P0)",
    )


# --- the design's own invariant --------------------------------------------------


def test_invariant_fires_when_pt_frag_refcount_and_the_list_disagree() -> None:
    machine = drive(GeraldV2, [ALLOC])
    design = machine.world.design
    assert list(design.invariants(machine.world)) == []
    page_named(machine, "P0").pt_mm = 0
    assert list(design.invariants(machine.world)) == [
        "P0 is on mm1->context.pgtable_list but its pt_frag_refcount is 0"
    ]
