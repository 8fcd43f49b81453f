"""no-readd: the design's rule as scripted interleavings, and the machine's power on it.

The scripts drive the machine's own rules step by step and check that the
situation was reached before they check the outcome. The last tests are the
positive controls: two variants that each break one piece the design's
correctness rests on, which the machine's search must find by itself.
"""

from __future__ import annotations

from designs.base import AA
from designs.no_readd import PGTABLE_PAGE, NoReadd
from stateful.hunt import survey
from stateful.kernel import api as k
from stateful.kernel.memory import Page
from stateful.kernel.mm import MMStruct
from stateful.machine import KernelMachine, machine_for
from stateful.replay import Step, replay
from tests.kernel_helpers import drive, in_order, small_search, trace_text


class KeepsUnusedHalf(NoReadd):
    """Frees never clear mm->context.pgtable_page: a page whose lower half is
    freed stays the page whose upper half is handed out next."""

    name = "no-readd-keeps-unused-half"

    def give_up_unused_half(self, mm: k.MMStruct, page: k.Page) -> k.Steps[None]:
        yield from ()


class XorBeforeLock(NoReadd):
    """page_table_free clears its AA bit (and may free the page) before it
    takes the lock to give up the unused half."""

    name = "no-readd-xor-before-lock"

    def page_table_free(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page, bit = table.page, table.bit
        if bit is None:  # a PGSTE table: as the design
            yield from super().page_table_free(mm, table)
            return
        mask = yield from k.atomic_xor_bits(page, AA << (bit + 24))
        mask >>= 24
        if mask == 0:
            yield from self.page_table_release(page, 1 << bit, mask)
        yield from k.spin_lock_bh(mm.context.lock)
        yield from self.give_up_unused_half(mm, page)
        yield from k.spin_unlock_bh(mm.context.lock)


def alloc() -> Step:
    return Step.of("page_table_alloc", {"cpu": 0, "irq": 0, "mm": 0, "pause": 0})


def free_tlb() -> Step:
    args = {"batch_alloc_fails": False, "cpu": 0, "irq": 0, "pause": 0, "table": 0}
    return Step.of("pte_free_tlb", args)


def defer() -> Step:
    return Step.of("pte_free_defer", {"cpu": 0, "irq": 0, "pause": 0, "table": 0})


def exit_mm() -> Step:
    args = {"batch_alloc_fails": False, "cpu": 0, "irq": 0, "mm": 0, "pause": 0}
    return Step.of("mm_exit", args)


SOFTIRQ = Step.of("softirq", {"which": 0, "pause": 0})


def mm_named(machine: KernelMachine, name: str) -> MMStruct:
    return next(mm for mm in machine.world.mms if mm.name == name)


def pgtable_page(machine: KernelMachine, mm_name: str) -> Page | None:
    page = mm_named(machine, mm_name).context.arch[PGTABLE_PAGE]
    assert page is None or isinstance(page, Page)
    return page


def live_pages(machine: KernelMachine) -> list[str]:
    return sorted(p.name for p in machine.world.allocator.live.values())


def test_a_fresh_page_hands_out_its_lower_half_and_points_the_mm_to_its_upper() -> None:
    machine = drive(NoReadd, [alloc()])
    page = pgtable_page(machine, "mm1")
    assert page is not None and page.refbyte == AA
    assert in_order(
        trace_text(machine.world),
        "spin_lock_bh(&mm1->context.lock)",
        "mm1->context.pgtable_page -> NULL",
        "spin_unlock_bh(&mm1->context.lock)",
        f"alloc_page() -> {page}",
        f"atomic_xor_bits({page}, 0x01) -> 0x01",
        f"mm1->context.pgtable_page = {page}",
    )
    assert list(machine.world.design.invariants(machine.world)) == []


def test_the_next_alloc_takes_the_upper_half_and_clears_the_pointer() -> None:
    machine = drive(NoReadd, [alloc(), alloc()])
    assert pgtable_page(machine, "mm1") is None
    text = trace_text(machine.world)
    page = text.split("alloc_page() -> ")[1].split()[0]
    assert text.count("alloc_page()") == 1
    assert in_order(
        text,
        f"mm1->context.pgtable_page -> {page}",
        "mm1->context.pgtable_page = NULL",
        f"atomic_xor_bits({page}, 0x02) -> 0x03",
    )


def test_a_freed_half_is_never_handed_out_again() -> None:
    """Both halves out; the upper freed through the mmu_gather and its bit
    cleared after the grace period (it ends on its own): the next alloc takes
    a fresh page."""
    machine = drive(NoReadd, [alloc(), alloc(), free_tlb(), SOFTIRQ, alloc()])
    text = trace_text(machine.world)
    first = text.split("alloc_page() -> ")[1].split()[0]
    assert in_order(text, f"__tlb_remove_table({first}.hi)", f"atomic_xor_bits({first}, 0x20)")
    assert text.count("alloc_page()") == 2
    second = text.split("alloc_page() -> ")[2].split()[0]
    assert second != first and pgtable_page(machine, "mm1") is not None
    assert sorted([first, second]) == live_pages(machine)


def test_freeing_the_lower_half_gives_up_the_unused_upper_and_frees_the_page() -> None:
    machine = drive(NoReadd, [alloc(), free_tlb()])
    assert pgtable_page(machine, "mm1") is None
    text = trace_text(machine.world)
    page = text.split("alloc_page() -> ")[1].split()[0]
    assert in_order(
        text,
        "page_table_free_rcu(tlb(mm1), ",
        f"mm1->context.pgtable_page -> {page}",
        "mm1->context.pgtable_page = NULL",
        f"atomic_xor_bits({page}, 0x11) -> 0x10",
    )
    machine.teardown()
    assert not machine.ended and machine.world.allocator.live == {}


def test_pte_free_defer_of_both_halves_frees_the_page_a_grace_period_later() -> None:
    machine = drive(NoReadd, [alloc(), alloc(), defer(), defer()])
    text = trace_text(machine.world)
    page = text.split("alloc_page() -> ")[1].split()[0]
    assert in_order(
        text,
        f"SetPageActive({page})",
        f"atomic_xor_bits({page}, 0x02) -> 0x01",
        f"SetPageActive({page})",
        f"atomic_xor_bits({page}, 0x01) -> 0x00",
        f"TestClearPageActive({page}) -> 1",
        f"call_rcu({page}->rcu_head, pte_free_now)",
    )
    assert page in live_pages(machine)  # waits for the grace period
    outcome = replay(machine_for(NoReadd, None), [alloc(), alloc(), defer(), defer()])
    assert outcome.violation is None and outcome.skipped == 0
    assert in_order(trace_text(outcome.machine.world), "pte_free_now", f"__free_page({page})")


def test_exit_leaves_the_pointer_null_and_nothing_allocated() -> None:
    outcome = replay(machine_for(NoReadd, None), [alloc(), alloc(), alloc(), exit_mm()])
    assert outcome.violation is None and outcome.skipped == 0
    assert outcome.machine.world.allocator.live == {}
    assert mm_named(outcome.machine, "mm1").context.arch[PGTABLE_PAGE] is None


def test_invariant_fires_when_the_pointed_page_has_its_upper_half_taken() -> None:
    machine = drive(NoReadd, [alloc()])
    page = pgtable_page(machine, "mm1")
    assert page is not None
    page.refbyte = 0x03  # as if the upper half had gone out without the pointer cleared
    assert list(machine.world.design.invariants(machine.world)) == [
        f"mm1->context.pgtable_page = {page} with _refcount byte 0x03: "
        "not only the lower half allocated"
    ]


# --- positive controls: the machine finds each broken variant by itself -----------

SMALL = small_search(200)


def test_the_machine_finds_a_freed_half_handed_out_again() -> None:
    found = survey(KeepsUnusedHalf, SMALL)
    assert "use-after-free" in found.first, found.ended_by


def test_the_machine_finds_the_page_freed_while_still_the_mms_pgtable_page() -> None:
    """A racing alloc then takes the freed page's upper half (use-after-free);
    between two rule calls the design's invariant sees the freed page pointed to."""
    found = survey(XorBeforeLock, SMALL)
    seen = found.first.get("use-after-free") or found.first.get("bad-bits")
    assert seen is not None, found.ended_by
    assert "use-after-free" in found.first or "->context.pgtable_page = " in seen.message
