"""The generic mmu_gather table freeing (CONFIG_MMU_GATHER_RCU_TABLE_FREE).

`tlb_remove_table` batches tables in a page; `tlb_finish_mmu` hands the
batch to one `call_rcu` whose callback runs the arch's `__tlb_remove_table`
on each, in softirq after a grace period. When the batch page cannot be
allocated (GFP_NOWAIT), the table is freed at once after an IPI to every
CPU: that waits for IRQ-disabled walkers, not for RCU readers.
"""

from __future__ import annotations

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Steps
from stateful.kernel.memory import Page, Tagged, free_page
from stateful.kernel.mm import MMStruct
from stateful.kernel.rcu import RcuHead, call_rcu


@define(eq=False)
class MmuGather:
    mm: MMStruct
    batch_alloc_fails: bool = False  # injected: the GFP_NOWAIT batch page is not there
    batch: list[Tagged] | None = None
    batch_page: Page | None = None
    rcu: RcuHead | None = None

    def __repr__(self) -> str:
        return f"tlb({self.mm})"


@define(eq=False)
class TableBatch:
    """struct mmu_table_batch: the page holding the tables and its rcu_head."""

    page: Page
    tables: list[Tagged] = field(factory=list)


def tlb_gather_mmu(mm: MMStruct, batch_alloc_fails: bool = False) -> MmuGather:
    return MmuGather(mm, batch_alloc_fails)


def tlb_remove_table(tlb: MmuGather, table: Tagged) -> Steps[None]:
    w = current.world()
    if tlb.batch is None:
        if tlb.batch_alloc_fails:
            w.trace_step("__get_free_page(GFP_NOWAIT) -> NULL")
            yield None
            w.trace_step("tlb_remove_table_sync_one(): IPI")
            # smp_call_function(tlb_remove_table_smp_sync): an empty function
            # whose only point is that every other CPU took the interrupt.
            w.trace_ipi("tlb_remove_table_smp_sync()")
            yield None
            yield from w.hook("tlb_remove_table", table)
            return
        tlb.batch_page = w.allocator.alloc("mmu_table_batch")
        tlb.batch = []
        tlb.rcu = RcuHead(f"{tlb.batch_page}(batch)->rcu", container=tlb.batch_page)
    tlb.batch.append(table)
    w.trace_step(f"tlb_remove_table({table})")
    yield None


def tlb_finish_mmu(tlb: MmuGather) -> Steps[None]:
    if tlb.batch is None:
        return
    assert tlb.rcu is not None and tlb.batch_page is not None
    batch = TableBatch(tlb.batch_page, tlb.batch)
    tlb.batch = None

    def tlb_remove_table_rcu(head: RcuHead) -> Steps[None]:
        w = current.world()
        w.access(batch.page, "tlb_remove_table_rcu")
        for table in batch.tables:
            yield from w.hook("tlb_remove_table", table)
        yield from free_page(batch.page)

    yield from call_rcu(tlb.rcu, tlb_remove_table_rcu, f"tlb_remove_table_rcu({batch.tables})")
