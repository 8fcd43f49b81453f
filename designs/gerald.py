"""gerald: Gerald Schaefer's alternative; deferred fragments never go back on the list.

Source:   linux-s390, Gerald Schaefer, 14 Jun 2023, "Re: [PATCH 07/12] s390:
          add pte_free_defer(), with use of mmdrop_async()", Message-ID
          <20230614153042.43a52187@thinkpad-T15>, in reply to Hugh Dickins'
          HH-bit rework: "by not putting fragments back on the list for the
          pte_free_defer() case, but with some risk of (temporarily) wasting
          an uncertain amount of memory". Read from its diff as Hugh quotes it
          whole in his reply of the same day (Message-ID
          <fc5cd62e-d85f-36c3-ba37-db87e8b625d@google.com>).
Rule:     upstream-6.4, plus HH bits for pte_free_defer; __tlb_remove_table
          is upstream's (no lock, no list, never touches the mm), so a half
          freed through pte_free_defer is never relinked.
Audit:    matches the posted diff, slips included:
  - page_table_free and page_table_free_rcu keep upstream's code (the
    temporary PP included); only their list step changes: `else if
    (!(mask & 0x0CU)) list_del`;
  - pte_free_defer: no pt_mm warning (the diff sets no page->pt_mm);
    list_del only if `(mask & 0x03U) == 0x00U && (mask & 0x0CU) != 0x0CU`;
  - pte_free_half, pte_free_now0/1 and pte_free_pgste are Hugh's, copied
    by the diff, with the same `mask & 0x0CU` and no `mask >>= 24` (see
    hugh-hh): the other half's deferred free is never queued from there.
  Left out, as in upstream-6.4 (see its header): pgtable_pte_page_ctor/dtor,
  arch_set_page_dat, memset64, allocation failure, gmap_unlink and
  __tlb_remove_table's case 0x00; page_table_release_check is upstream-6.4's.
Verdicts (expected):
  - list-corruption: Gerald's own worry, "we might end up with a list_del()
    although there never was a list_add()": a page left off the list by
    pte_free_defer has no HH bit left once its deferred half is gone, so
    the next free of the other half list_del()s a page that is on no list.
  - leak (found by the machine once pte_free_half was modelled as posted):
    Hugh's pte_free_half, copied by the diff, never queues the second
    deferred half of a page (see hugh-hh); the page and that table leak.
  - everything else held: __tlb_remove_table never touches the mm, so there
    is no unstable mm, and no lock is taken in softirq.
"""

from __future__ import annotations

from designs.base import AA, HH, PP
from designs.hugh_hh import HughHH
from designs.upstream_6_4 import Upstream64
from stateful.kernel import api as k


class Gerald(Upstream64):
    name = "gerald"
    title = "upstream-6.4 + HH bits; deferred halves never relinked"
    source = "linux-s390, Gerald Schaefer, 14 Jun 2023, reply to the HH-bit rework"
    known = {
        "list-corruption": "a page pte_free_defer left off pgtable_list is list_del()ed "
        "when its other half is freed: list_del without list_add, as Gerald feared",
        "leak": "pte_free_half (Hugh's, copied) tests `mask & 0x0CU` without `mask >>= 24`: "
        "when both halves were deferred, the second one's call_rcu is never made",
    }
    supports_defer = True

    def free_list_step(self, mm: k.MMStruct, page: k.Page, mask: int, tail: bool) -> k.Steps[None]:
        """page_table_free and page_table_free_rcu keep upstream's temporary PP;
        only the list step changes."""
        if mask & 0x03:
            add = k.list_add_tail if tail else k.list_add
            yield from add(page, mm.context.pgtable_list)
        elif not mask & 0x0C:
            # "if pte_free_defer() marked other half for delayed release,
            # w/o list_add(), we must _not_ do list_del()"
            yield from k.list_del(page)

    def pte_free_defer(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.call_rcu(page.rcu_head, self.pte_free_pgste)
            return
        bit = table.bit
        assert bit is not None
        yield from k.spin_lock_bh(mm.context.lock)
        mask = yield from k.atomic_xor_bits(page, (AA | HH | PP) << (bit + 24))
        mask >>= 24
        if not mask & 0x03 and mask & 0x0C != 0x0C:
            yield from k.list_del(page)
        yield from k.spin_unlock_bh(mm.context.lock)
        if mask & 0x0C != 0x0C:
            yield from k.call_rcu(page.rcu_head, self.pte_free_now[bit])

    # As hugh-hh; the __tlb_remove_table they call is upstream's, so the
    # freed half is never put back on the list.
    pte_free_pgste = HughHH.pte_free_pgste
    pte_free_half = HughHH.pte_free_half
    pte_free_now0 = HughHH.pte_free_now0
    pte_free_now1 = HughHH.pte_free_now1
    pte_free_now = HughHH.pte_free_now
