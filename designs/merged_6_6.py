"""merged-6.6: what was merged, "s390: add pte_free_defer() for pgtables sharing page".

Source:   v6.6, commit 8211dad627981 "s390: add pte_free_defer() for pgtables
          sharing page" (Hugh Dickins, Reviewed-by Gerald Schaefer), posted as
          [PATCH v3 07/13] on 11 Jul 2023, Message-ID
          <94eccf5f-264c-8abe-4567-e77f4b4e14a@google.com>.
Rule:     upstream-6.4 plus PageActive. pte_free_defer marks the page Active
          and frees the table with page_table_free. An Active page never goes
          back on pgtable_list (list_del_init instead), so both its halves
          stay unusable until both are gone; when the byte reaches 0, an
          Active page is freed by call_rcu(pte_free_now) instead of at once.
Audit:    matches the posted C:
  - page_table_alloc: list_del_init from the list; INIT_LIST_HEAD(&page->lru)
    for a PGSTE page;
  - page_table_free, page_table_free_rcu: list_add (list_add_tail) only if
    `(mask & 0x03U) && !PageActive(page)`, else list_del_init;
  - page_table_free and __tlb_remove_table end in page_table_release_check,
    then `TestClearPageActive ? call_rcu(pte_free_now) : pte_free_now()`;
  - pte_free_defer: SetPageActive, page_table_free, then
    WARN_ON_ONCE(mm_has_pgste(mm)). As posted in v3 it read
    mm_alloc_pgste(mm); "[PATCH v3 07/13 fix]" (Message-ID
    <3bc095ba-a180-ce3b-82b1-2bfc64612f3@google.com>: Claudio "finds warning
    on mm_has_pgste() more useful than on mm_alloc_pgste()") was folded in
    before the merge, and v6.6 has mm_has_pgste.
  page_table_release_check (CONFIG_DEBUG_VM) is `if (!mask &&
  list_empty(&page->lru)) return; dump_page(...)`: modelled with C's
  short-circuit (list_empty is read only when the byte is 0). The kernel
  only prints the dump ("page dumped because: Invalid pgtable ... release
  half ... mask ...") and frees the page all the same; the model reports it
  as bad-bits through WARN_ON_ONCE and goes on, as the kernel does.
  Left out, as in upstream-6.4 (see its header): pgtable_pte_page_ctor/dtor,
  arch_set_page_dat, memset64, allocation failure, gmap_unlink and
  __tlb_remove_table's case 0x00.
Verdicts (expected): every property held.
  - no list ever holds a page whose rcu_head can be queued: Active pages
    are taken off the list, and the rcu_head is used only at byte 0;
  - the deferred half is never reused (the page is off the list) and the
    page is freed only after a grace period, so early-reuse cannot happen;
  - __tlb_remove_table never touches the mm or a lock.
Cost:     a deferred page's free half is wasted until both halves are gone.
Not reached: the model has no KVM (s390_enable_sie never runs, so
          mm_has_pgste is never true), and the WARN never fires here. On
          real hardware it does, on a valid path: khugepaged retracts a table
          of an mm whose has_pgste is set before its VMAs are marked
          VM_NOHUGEPAGE; removed by 5647f61ad917 ("s390/mm: Remove possible
          false-positive warning in pte_free_defer()", 2025, Cc stable 6.6+).
          An mm that only allocates PGSTE tables (mm_alloc_pgste) keeps THP,
          and its 4K tables do reach pte_free_defer here, as in the kernel.
"""

from __future__ import annotations

from designs.upstream_6_4 import Upstream64
from stateful.kernel import api as k


class Merged66(Upstream64):
    name = "merged-6.6"
    title = "PageActive: a deferred page leaves the list and is freed by call_rcu"
    source = "v6.6 s390: add pte_free_defer() for pgtables sharing page"
    known: dict[str, str] = {}
    supports_defer = True

    def pgste_page_init(self, page: k.Page) -> k.Steps[None]:
        # page_table_release_check wants an empty lru on every page.
        yield from k.INIT_LIST_HEAD(page)

    def alloc_list_del(self, page: k.Page) -> k.Steps[None]:
        yield from k.list_del_init(page)

    def free_list_step(self, mm: k.MMStruct, page: k.Page, mask: int, tail: bool) -> k.Steps[None]:
        if mask & 0x03 and not (yield from k.PageActive(page)):
            # Neither half deferred: this half is reusable (at once, or at the
            # tail once its PP clears).
            add = k.list_add_tail if tail else k.list_add
            yield from add(page, mm.context.pgtable_list)
        else:
            yield from k.list_del_init(page)

    def page_table_release(self, page: k.Page, half: int = 0, mask: int = 0) -> k.Steps[None]:
        """The end of page_table_free and __tlb_remove_table: the release
        check, then free now or after a grace period."""
        if mask or not (yield from k.list_empty(page)):
            yield from k.WARN_ON_ONCE(
                True,
                f"page_table_release_check: dump_page({page}): Invalid pgtable "
                f"release half {half:#04x} mask {mask:#04x}",
            )
        if (yield from k.TestClearPageActive(page)):
            yield from k.call_rcu(page.rcu_head, self.pte_free_now)
        else:
            yield from k.free_page(page)

    def pte_free_now(self, head: k.PageRcuHead) -> k.Steps[None]:
        yield from k.free_page(head.page)

    def pte_free_defer(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        yield from k.SetPageActive(table.page)
        yield from k.hook("page_table_free", mm, table)
        # page_table_free does not do the gmap_unlink of page_table_free_rcu.
        pgste = yield from k.mm_has_pgste(mm)
        yield from k.WARN_ON_ONCE(pgste, "pte_free_defer: mm_has_pgste(mm)")
