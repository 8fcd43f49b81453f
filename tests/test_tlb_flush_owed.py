"""The TLB flush that pte_free_tlb makes owed, before __tlb_remove_table.

Mutation analysis found the hole: deleting the flush from upstream-6.4's
`__tlb_flush_mm_lazy` survived, because no check said a table must not be
freed while the mm's TLB may still hold translations through it. The kernel
model now reports it as a use-after-free (by the hardware walker). These
tests show the check fires on a design that forgets the flush, that the
exhaustive search finds that by itself, and that a flush made by another
CPU's context switch counts.
"""

from __future__ import annotations

import pytest

from designs.upstream_6_4 import Upstream64
from stateful.exhaustive import explore, parse_bound
from stateful.kernel import api as k
from stateful.violations import UseAfterFree
from tests.kernel_helpers import drive, step_on, trace_text
from tests.kernel_helpers import step as _step

LEAN = "boot=1,mms=1,exits=0,pgste=0,batch=0"


class ForgetsTheFlush(Upstream64):
    """__tlb_flush_mm_lazy takes mm->context.lock and flushes nothing."""

    name = "upstream-6.4-forgets-the-flush"

    def tlb_flush_mm_lazy(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from k.spin_lock(mm.context.lock)
        yield from k.spin_unlock(mm.context.lock)


ALLOC = _step("page_table_alloc", cpu=0, irq=0, mm=0, pause=0, thp=False, vma=0)
MUNMAP = _step("pte_free_tlb", batch_alloc_fails=False, cpu=0, irq=0, pause=0, table=0)
SOFTIRQ = _step("softirq", which=0, pause=0)


def test_a_munmap_that_flushes_frees_its_table_after_the_grace_period() -> None:
    machine = drive(Upstream64, [ALLOC, MUNMAP, SOFTIRQ])
    assert not any(mm.tlb_flush_owed for mm in machine.world.mms)


def test_a_table_freed_with_its_flush_still_owed_is_a_use_after_free() -> None:
    with pytest.raises(UseAfterFree, match="TLB flush .* owed"):
        drive(ForgetsTheFlush, [ALLOC, MUNMAP, SOFTIRQ])


def test_a_flush_made_by_a_context_switch_pays_what_is_owed() -> None:
    """munmap paused after pte_free_tlb, before its own flush: another CPU's
    switch_mm flushes the mm, so nothing is owed when the table is freed."""
    for pause in range(1, 40):
        munmap = _step("pte_free_tlb", batch_alloc_fails=False, cpu=0, irq=0, pause=pause, table=0)
        machine = drive(Upstream64, [ALLOC, munmap])
        if any(mm.tlb_flush_owed for mm in machine.world.mms):
            break
    else:
        pytest.fail("the munmap never stopped between pte_free_tlb and its flush")
    step_on(machine, _step("tlb_flush_mm_lazy", cpu=0, irq=0, mm=0, pause=0))
    assert not any(mm.tlb_flush_owed for mm in machine.world.mms)
    step_on(machine, _step("resume", which=0, pause=0, irq=0))
    step_on(machine, SOFTIRQ)
    assert "__tlb_remove_table" in trace_text(machine.world), "the table was not freed"


def test_the_exhaustive_search_finds_the_forgotten_flush() -> None:
    explorer = explore(ForgetsTheFlush, parse_bound(f"S=1,C=1,P=0,I=1,tables=1,{LEAN}"))
    assert "use-after-free" in explorer.result.found
    assert not explore(Upstream64, parse_bound(f"S=1,C=1,P=0,I=1,tables=1,{LEAN}")).result.found
