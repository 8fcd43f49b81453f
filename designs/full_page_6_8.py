"""full-page-6.8: every PTE table gets a whole 4K page (upstream since v6.8).

Source:   v6.8, commit d08d4e7cd6bf "s390/mm: use full 4KB page for 2KB PTE"
          (arch/s390/mm/pgalloc.c, arch/s390/include/asm/tlb.h).
Audit:    matches the C as far as the model reaches: page_table_alloc
          allocates a page; page_table_free and __tlb_remove_table free it
          (pagetable_pte_dtor_free); pte_free_tlb hands it to the mmu_gather;
          pte_free_defer is call_rcu(pte_free_now) followed by
          WARN_ON_ONCE(mm_has_pgste(mm)) (a later stable fix, 5647f61ad917,
          removed that warning: it fires on a valid case, which the model
          does not reach: it has no KVM, so mm_has_pgste is never true).
          Differences:
  - pgtable_pte_ctor/dtor, arch_set_page_dat, memset64, allocation failure,
    gmap_unlink and the CRST case of __tlb_remove_table are left out, as in
    upstream-6.4 (see its header).
Verdicts: every property held.
  - no list, no bits, nothing shared between two tables, so nothing to race on;
  - pte_free_defer is a plain call_rcu on the page's own rcu_head, which no
    list ever links, and the page is freed only in the callback.
Cost: one 4K page per 2K table (the memory measure shows it).
"""

from __future__ import annotations

from designs.base import Design
from stateful.kernel import api as k


class FullPage68(Design):
    name = "full-page-6.8"
    title = "one 4K page per 2K table: no fragments, no list"
    source = "v6.8 s390/mm: use full 4KB page for 2KB PTE"
    known: dict[str, str] = {}
    supports_defer = True

    def init_context(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from k.spin_lock_init(mm.context.lock)

    def destroy_context(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from ()

    def page_table_alloc(self, mm: k.MMStruct) -> k.Steps[k.Table]:
        page = yield from k.alloc_page()
        return k.table_of(page, None)

    def page_table_free(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        yield from k.free_page(table.page)

    def page_table_free_rcu(self, tlb: k.MmuGather, table: k.Table) -> k.Steps[None]:
        yield from k.tlb_remove_table(tlb, k.tagged(table.page, 0))

    def tlb_remove_table(self, tagged: k.Tagged) -> k.Steps[None]:
        yield from k.free_page(tagged.page)

    def pte_free_defer(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        yield from k.call_rcu(table.page.rcu_head, self.pte_free_now)
        # THP is not allowed in KVM guests: warn if a PGSTE table gets here.
        pgste = yield from k.mm_has_pgste(mm)
        yield from k.WARN_ON_ONCE(pgste, "pte_free_defer: mm_has_pgste(mm)")

    def pte_free_now(self, head: k.PageRcuHead) -> k.Steps[None]:
        yield from k.free_page(head.page)

    def tlb_flush_mm_lazy(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from k.spin_lock(mm.context.lock)
        yield from k.flush_mm_if_pending(mm)
        yield from k.spin_unlock(mm.context.lock)
