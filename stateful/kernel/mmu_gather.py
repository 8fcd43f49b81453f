"""The mmu_gather, as s390 uses it (CONFIG_MMU_GATHER_RCU_TABLE_FREE).

s390's `pte_free_tlb` sets `mm->context.flush_mm` and the gather's
`freed_tables` before it hands the table to `page_table_free_rcu`. The
generic `tlb_remove_table` batches tables in a page; `tlb_finish_mmu` ->
`tlb_flush_mmu` first flushes the TLB if anything was cleared or freed (on
s390 `tlb_flush` is `__tlb_flush_mm_lazy`, which takes mm->context.lock:
the design's `tlb_flush_mm_lazy` hook, in the design's lock flavour), then
hands the batch to one `call_rcu` whose callback runs the arch's
`__tlb_remove_table` on each table, in softirq after a grace period. When
the batch page cannot be allocated (GFP_NOWAIT), `tlb_table_invalidate`
flushes the same way, and the table is freed at once after an IPI to every
CPU: that waits for IRQ-disabled walkers, not for RCU readers. When another
mmu_gather of the same mm is in flight (`mm_tlb_flush_nested`),
`tlb_finish_mmu` flushes whatever it gathered.

The flush is what makes freeing safe: until the mm's TLB is flushed, it may
still hold translations through a table `pte_free_tlb` unhooked, and the
hardware walker may still read it. So a table handed to `__tlb_remove_table`
while its flush is still owed is reported as a use-after-free (by the
walker; KASAN cannot see it, a stale TLB can).
"""

from __future__ import annotations

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Steps
from stateful.kernel.memory import Page, Table, Tagged, free_page
from stateful.kernel.mm import MMStruct
from stateful.kernel.rcu import RcuHead, call_rcu
from stateful.violations import UseAfterFree


@define(eq=False)
class MmuGather:
    mm: MMStruct
    batch_alloc_fails: bool = False  # injected: the GFP_NOWAIT batch page is not there
    batch: list[Tagged] | None = None
    batch_page: Page | None = None
    rcu: RcuHead | None = None
    # What the gather has to flush for (__tlb_adjust_range and friends).
    freed_tables: bool = False
    cleared_ptes: bool = False
    cleared_pmds: bool = False

    def __repr__(self) -> str:
        return f"tlb({self.mm})"


@define(eq=False)
class TableBatch:
    """struct mmu_table_batch: the page holding the tables and its rcu_head."""

    page: Page
    tables: list[Tagged] = field(factory=list)


def tlb_gather_mmu(mm: MMStruct, batch_alloc_fails: bool = False) -> MmuGather:
    """Not a step: inc_tlb_flush_pending is one atomic increment, made by a
    task that holds the mm (a user, or exit_mmap's own)."""
    mm.tlb_flush_pending += 1
    return MmuGather(mm, batch_alloc_fails)


def pte_free_tlb(tlb: MmuGather, table: Table) -> Steps[None]:
    """s390's pte_free_tlb: flag the lazy flush, then page_table_free_rcu."""
    w = current.world()
    mm = tlb.mm
    w.access(mm, f"{mm}->context.flush_mm = 1")
    mm.context.flush_mm = True
    mm.tlb_flush_owed.extend((table.page, half) for half in table.halves)
    tlb.freed_tables = tlb.cleared_pmds = True
    w.trace_step(f"{mm}->context.flush_mm = 1")
    yield None
    yield from w.hook("page_table_free_rcu", tlb, table)


_TAG_HALVES = {1: (0,), 2: (1,), 3: (0, 1)}


def _hand_to_arch(mm: MMStruct, table: Tagged) -> Steps[None]:
    """The generic code gives the table to the arch's __tlb_remove_table."""
    w = current.world()
    owed = [h for h in _TAG_HALVES.get(table.tag, (0, 1)) if (table.page, h) in mm.tlb_flush_owed]
    if owed:
        w.report(
            UseAfterFree,
            f"{table} freed by __tlb_remove_table while the TLB flush of {mm} that "
            f"pte_free_tlb made owed has not been done: the TLB may still walk it",
            where=f"__tlb_remove_table({table})",
        )
    yield from w.hook("tlb_remove_table", table)


def tlb_flush_mmu_tlbonly(tlb: MmuGather) -> Steps[None]:
    if not (tlb.freed_tables or tlb.cleared_ptes or tlb.cleared_pmds):
        return
    # s390's tlb_flush(tlb): __tlb_flush_mm_lazy(tlb->mm).
    yield from current.world().hook("tlb_flush_mm_lazy", tlb.mm)
    tlb.freed_tables = tlb.cleared_ptes = tlb.cleared_pmds = False  # __tlb_reset_range


def tlb_remove_table(tlb: MmuGather, table: Tagged) -> Steps[None]:
    w = current.world()
    if tlb.batch is None:
        if tlb.batch_alloc_fails:
            w.trace_step("__get_free_page(GFP_NOWAIT) -> NULL")
            yield None
            yield from tlb_flush_mmu_tlbonly(tlb)  # tlb_table_invalidate
            w.trace_step("tlb_remove_table_sync_one(): IPI")
            # smp_call_function(tlb_remove_table_smp_sync): an empty function
            # whose only point is that every other CPU took the interrupt.
            w.trace_ipi("tlb_remove_table_smp_sync()")
            yield None
            yield from _hand_to_arch(tlb.mm, table)
            return
        tlb.batch_page = w.allocator.alloc("mmu_table_batch")
        tlb.batch = []
        tlb.rcu = RcuHead(f"{tlb.batch_page}(batch)->rcu", container=tlb.batch_page)
    tlb.batch.append(table)
    w.trace_step(f"tlb_remove_table({table})")
    yield None


def _tlb_table_flush(tlb: MmuGather) -> Steps[None]:
    """The batch to call_rcu (its tlb_table_invalidate finds nothing left to flush)."""
    if tlb.batch is None:
        return
    assert tlb.rcu is not None and tlb.batch_page is not None
    batch = TableBatch(tlb.batch_page, tlb.batch)
    mm = tlb.mm
    tlb.batch = None

    def tlb_remove_table_rcu(head: RcuHead) -> Steps[None]:
        w = current.world()
        w.access(batch.page, "tlb_remove_table_rcu", contents=True)
        for table in batch.tables:
            yield from _hand_to_arch(mm, table)
        yield from free_page(batch.page)

    yield from call_rcu(tlb.rcu, tlb_remove_table_rcu, f"tlb_remove_table_rcu({batch.tables})")


def tlb_flush_mmu(tlb: MmuGather) -> Steps[None]:
    yield from tlb_flush_mmu_tlbonly(tlb)
    yield from _tlb_table_flush(tlb)


def tlb_finish_mmu(tlb: MmuGather) -> Steps[None]:
    w = current.world()
    mm = tlb.mm
    w.access(mm, f"tlb_finish_mmu({tlb})")
    if mm.tlb_flush_pending > 1:  # mm_tlb_flush_nested
        tlb.freed_tables = True
    if tlb.freed_tables or tlb.cleared_ptes or tlb.cleared_pmds or tlb.batch is not None:
        yield from w.traced(
            f"tlb_finish_mmu({tlb})", w.traced(f"tlb_flush_mmu({tlb})", tlb_flush_mmu(tlb))
        )
    mm.tlb_flush_pending -= 1  # dec_tlb_flush_pending
