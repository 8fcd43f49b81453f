"""gerald-v2: Gerald Schaefer's version of [PATCH v2 07/12]; the list status in pt_frag_refcount.

Source:   linux-mm, Gerald Schaefer, 28 Jun 2023, "Re: [PATCH v2 07/12] s390:
          add pte_free_defer() for pgtables sharing page", Message-ID
          <20230628211624.531cdc58@thinkpad-T15>: "an adjusted version of your
          patch, copying most of your pte_free_defer() logic and also
          description, tested with LTP". A diff against v6.4's pgalloc.c.
Rule:     "a page is never added back to the list in pte_free_defer(). It is
          only removed from the list, when currently listed because the other
          fragment is not allocated." Whether a page is listed is kept in
          page->pt_frag_refcount (1 at every list_add, 0 at every list_del,
          under mm->context.lock), and every freeing path reads it before its
          list_del. page_table_alloc, page_table_free (with the temporary PP
          of c2c224932fd0), page_table_free_rcu and __tlb_remove_table are
          v6.4's otherwise: __tlb_remove_table takes no lock and never touches
          the mm or the list, so a half freed by pte_free_defer is never
          relinked. HH bits and pte_free_half as in v2 (hugh-hh).
Differences from the posted C, each a modelling choice:
  - BUG_ON(atomic_read(&page->pt_frag_refcount)) in pte_free_defer is a
    bad-bits report worded as the oops (k.BUG_ON); the model goes on after it.
  - pt_frag_refcount shares its word with pt_mm, as in struct page. Nothing
    here initialises it on a fresh page (alloc_page does not promise 0); every
    path sets it (list_add then atomic_set 1, under the lock) before any read,
    and the model's read refuses an unset word rather than guess.
  - left out, as in upstream-6.4 (see its header): pgtable_pte_page_ctor/dtor,
    arch_set_page_dat, memset64, allocation failure, gmap_unlink and
    __tlb_remove_table's case 0x00; page_table_release_check is upstream-6.4's.
    pte_free_defer's PGSTE branch (with Gerald's TODO on gmap_unlink) is
    modelled but never runs: s390 has no THP in mms with PGSTEs.
  pte_free_half, pte_free_now0/1 and pte_free_pgste are v2's text, inherited
  from hugh-hh (designs/hugh_hh.py), as the posted diff copies them.
Verdicts (the machine's, each diagram read against the posted C; scenarios in
tests/test_gerald_v2.py):
  `pytest -n 0 tests/test_verdicts.py --design gerald-v2` (6,000 examples x 40
  steps, derandomized): 6,000 runs, 180 ended in the leak, the rest drained
  clean; `python benchmarks/find_speed.py --survey --design gerald-v2 --runs 3`:
  the leak in 3 of 3 seeds, nothing else.
  - leak: pte_free_half as posted tests `mask & 0x0CU` on the whole _refcount
    (no `mask >>= 24`), i.e. the page's own count, 1: when both halves are
    deferred within one grace period, the second pte_free_defer leaves its
    call_rcu to the first's pte_free_half, which never makes it; the page
    keeps that half's HH and PP bits (0x14 or 0x28) for ever. With the shift
    (the test's Intended variant) the page is freed;
  - held, list-corruption: Gerald's claim, "there is no 'list_del() without
    list_add()' flaw any more", stands: every list_del reads pt_frag_refcount
    under the lock that every list_add and atomic_set hold, so the status is
    never stale. The interleaving that broke his 14 June version (both halves
    through pte_free_defer, the second after the first's callback) runs clean
    here;
  - held, everything else: __tlb_remove_table never touches the mm or a lock,
    so there is no unstable mm and nothing is locked in softirq.
"""

from __future__ import annotations

from collections.abc import Iterator

from designs.hugh_hh import HughHH
from designs.upstream_6_4 import Upstream64
from stateful.kernel import api as k
from stateful.kernel.world import World


class GeraldV2(Upstream64):
    name = "gerald-v2"
    title = "v6.4 + HH bits; list status in page->pt_frag_refcount, never relinked"
    source = (
        "linux-mm, Gerald Schaefer, 28 Jun 2023, Re: [PATCH v2 07/12] "
        "<20230628211624.531cdc58@thinkpad-T15>"
    )
    known = {
        "leak": "both halves deferred in one grace period: the posted pte_free_half tests "
        "`mask & 0x0CU` without `mask >>= 24` (the page's own count, 1), so the second "
        "half is never queued and the page never freed",
    }
    supports_defer = True

    def page_table_alloc(self, mm: k.MMStruct) -> k.Steps[k.Table]:
        if not (yield from k.mm_alloc_pgste(mm)):
            table = None
            yield from k.spin_lock_bh(mm.context.lock)
            page = yield from k.list_first_entry_or_null(mm.context.pgtable_list)
            if page is not None:
                mask = (yield from k.atomic_read(page)) >> 24
                mask = (mask | (mask >> 4)) & 0x03
                if mask != 0x03:
                    bit = mask & 1  # =1 -> second 2K
                    table = k.table_of(page, bit)
                    yield from k.atomic_xor_bits(page, 0x01 << (bit + 24))
                    yield from k.list_del(page)
                    yield from k.atomic_set_pt_frag_refcount(page, 0)
            yield from k.spin_unlock_bh(mm.context.lock)
            if table is not None:
                return table
        page = yield from k.alloc_page()
        if (yield from k.mm_alloc_pgste(mm)):
            # Return 4K page table with PGSTEs
            yield from k.atomic_xor_bits(page, 0x03 << 24)
            return k.table_of(page, None)
        # Return the first 2K fragment of the page
        yield from k.atomic_xor_bits(page, 0x01 << 24)
        yield from k.spin_lock_bh(mm.context.lock)
        yield from k.list_add(page, mm.context.pgtable_list)
        yield from k.atomic_set_pt_frag_refcount(page, 1)
        yield from k.spin_unlock_bh(mm.context.lock)
        return k.table_of(page, 0)

    def page_table_free(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        if not (yield from k.mm_alloc_pgste(mm)):
            bit = table.bit
            assert bit is not None
            yield from k.spin_lock_bh(mm.context.lock)
            mask = yield from k.atomic_xor_bits(page, 0x11 << (bit + 24))
            mask >>= 24
            if mask & 0x03:
                # Other half is allocated, add to list
                yield from k.list_add(page, mm.context.pgtable_list)
                yield from k.atomic_set_pt_frag_refcount(page, 1)
            elif (yield from k.atomic_read_pt_frag_refcount(page)):
                # Other half is not allocated, and page is on the list
                yield from k.list_del(page)
                yield from k.atomic_set_pt_frag_refcount(page, 0)
            yield from k.spin_unlock_bh(mm.context.lock)
            mask = yield from k.atomic_xor_bits(page, 0x10 << (bit + 24))
            mask >>= 24
            # Return if other half is allocated, or delayed release pending
            if mask != 0x00:
                return
            half = 0x01 << bit
        else:
            half = 0x03
            mask = yield from k.atomic_xor_bits(page, 0x03 << 24)
            mask >>= 24
        yield from self.page_table_release(page, half, mask)

    def page_table_free_rcu(self, tlb: k.MmuGather, table: k.Table) -> k.Steps[None]:
        mm, page = tlb.mm, table.page
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.tlb_remove_table(tlb, k.tagged(page, 0x03))
            return
        bit = table.bit
        assert bit is not None
        yield from k.spin_lock_bh(mm.context.lock)
        mask = yield from k.atomic_xor_bits(page, 0x11 << (bit + 24))
        mask >>= 24
        if mask & 0x03:
            # Other half is allocated: at the tail, as this half is not
            # re-usable until its delayed release
            yield from k.list_add_tail(page, mm.context.pgtable_list)
            yield from k.atomic_set_pt_frag_refcount(page, 1)
        elif (yield from k.atomic_read_pt_frag_refcount(page)):
            # Other half is not allocated, and page is on the list
            yield from k.list_del(page)
            yield from k.atomic_set_pt_frag_refcount(page, 0)
        yield from k.spin_unlock_bh(mm.context.lock)
        yield from k.tlb_remove_table(tlb, k.tagged(page, 0x01 << bit))

    def pte_free_defer(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.call_rcu(page.rcu_head, self.pte_free_pgste)
            return
        bit = table.bit
        assert bit is not None
        yield from k.spin_lock_bh(mm.context.lock)
        mask = yield from k.atomic_xor_bits(page, 0x15 << (bit + 24))
        mask >>= 24
        if mask & 0x03 == 0x00 and (yield from k.atomic_read_pt_frag_refcount(page)):
            # Other half is not allocated, page is on the list
            yield from k.list_del(page)
            yield from k.atomic_set_pt_frag_refcount(page, 0)
        # Page must not be on the list, so rcu_head can be used
        yield from k.BUG_ON(
            bool((yield from k.atomic_read_pt_frag_refcount(page))),
            "pte_free_defer: BUG_ON(atomic_read(&page->pt_frag_refcount))",
        )
        yield from k.spin_unlock_bh(mm.context.lock)
        # Do not relink on rcu_head if other half already linked on rcu_head
        if mask & 0x0C != 0x0C:
            yield from k.call_rcu(page.rcu_head, self.pte_free_now1 if bit else self.pte_free_now0)

    # v2's text, copied by the posted diff; the __tlb_remove_table they call
    # is this design's, v6.4's: the freed half is never put back on the list.
    pte_free_pgste = HughHH.pte_free_pgste
    pte_free_half = HughHH.pte_free_half
    pte_free_now0 = HughHH.pte_free_now0
    pte_free_now1 = HughHH.pte_free_now1
    pte_free_now = HughHH.pte_free_now

    def invariants(self, world: World) -> Iterator[str]:
        yield from super().invariants(world)
        if any(not mm.freed and mm.context.lock.holder is not None for mm in world.mms):
            return  # a holder may be between its list step and its atomic_set
        for page in world.allocator.live.values():
            if page.purpose != "pgtable" or not isinstance(page.pt_mm, int):
                continue
            listed = page.list_of is not None
            if page.pt_mm != int(listed):
                where = f"on {page.list_of}" if listed else "on no list"
                yield f"{page} is {where} but its pt_frag_refcount is {page.pt_mm}"
