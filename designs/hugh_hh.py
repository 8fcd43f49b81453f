"""hugh-hh: Hugh Dickins' HH-bit rework of page_table_free / pte_free_defer.

Source:   linux-s390, Hugh Dickins, 12 Jun 2023 23:34 PDT (13 Jun UTC), the
          rework "[PATCH 07/12] s390: add pte_free_defer() for pgtables sharing
          page" posted inline in "Re: [PATCH 07/12] s390: add pte_free_defer(),
          with use of mmdrop_async()", Message-ID
          <a948f24b-4fe6-8bc0-221a-65e9ccc8371a@google.com>; reviewed on 14-15
          June (shared/seed). With Gerald Schaefer's two compile fixes
          (`struct rcu_read` -> `struct rcu_head` in pte_free_now1, the missing
          ';' after call_rcu in pte_free_defer), which change no step.
Rule:     a page is not on pgtable_list while either half is pending free;
          afterwards __tlb_remove_table relinks it (other half allocated) or
          frees it, so __tlb_remove_table takes mm->context.lock, found
          through page->pt_mm.
Audit:    matches the posted C, slips included. pte_free_half does
          `mask = atomic_xor_bits(&page->_refcount, 0x04U << (bit + 24))` and
          later tests `mask & 0x0CU` with no `mask >>= 24` in between: the
          test reads the page's ordinary reference count (1), not the HH bits,
          so it never queues the other half's deferred free. Modelled as
          posted (k.atomic_xor_bits returns the whole _refcount); the intended
          test is the design global-lock-intended. Left out, as in
          upstream-6.4 (see its header): pgtable_pte_page_ctor/dtor,
          arch_set_page_dat, memset64, allocation failure, gmap_unlink and
          __tlb_remove_table's case 0x00. page_table_release_check is
          upstream-6.4's (bad-bits, no step when the byte is 0). The model keeps
          the page's ordinary reference count at 1: a transient speculative
          reference (get_page_unless_zero on a pfn walk) raising it to 4..15
          would make the posted test fire; no such reference is modelled.
Verdicts (expected):
  - deadlock: tlb_flush_mm_lazy takes mm->context.lock with plain spin_lock,
    and a softirq __tlb_remove_table on the same CPU spins on it (the seed's
    "I actually hit the deadlock");
  - lockdep: the same lock is taken in softirq and with softirqs enabled;
  - use-after-free: __tlb_remove_table's atomic_read proves the mm alive only
    at that instant; the mm can exit and be freed before its spin_lock_bh
    (Hugh's "unstable mm");
  - leak (found by the machine once pte_free_half was modelled as posted):
    both halves pass through pte_free_defer, the second while the first's
    rcu_head is queued, so it leaves its call_rcu to pte_free_half; that
    tests the low bits of _refcount and never makes it. The page stays at
    HH|PP of the second half (0x14 or 0x28) for ever, with that table in it.
    Four rules, no preemption: alloc, alloc, pte_free_defer, pte_free_defer.
Open in the thread: whether dropping the temporary PP of c2c224932fd0 from
page_table_free reintroduces that race. The verdict table answers it.
"""

from __future__ import annotations

from collections.abc import Iterator

from designs.base import AA, HH, PP, Design
from designs.upstream_6_4 import page_table_release_check
from stateful.kernel import api as k
from stateful.kernel.world import World


class HughHH(Design):
    name = "hugh-hh"
    title = "HH bits; __tlb_remove_table relinks under mm->context.lock"
    source = "linux-s390, Hugh Dickins, 13 Jun 2023, [PATCH 07/12] rework (seed thread)"
    known = {
        "deadlock": "softirq __tlb_remove_table spins on mm->context.lock held by "
        "tlb_flush_mm_lazy's plain spin_lock on the same CPU",
        "lockdep": "mm->context.lock taken in softirq (__tlb_remove_table) and with "
        "softirqs enabled (tlb_flush_mm_lazy)",
        "use-after-free": "unstable mm: __tlb_remove_table locks page->pt_mm after the mm "
        "it saw alive has exited and been freed",
        "leak": "pte_free_half tests `mask & 0x0CU` without `mask >>= 24` (the page's own "
        "refcount): when both halves were deferred, the second one's call_rcu is never made, "
        "and its table and the page leak",
    }
    supports_defer = True

    # The lock flavour of the other user of mm->context.lock.
    flush_lock = staticmethod(k.spin_lock)
    flush_unlock = staticmethod(k.spin_unlock)

    def pgtable_lock(self, mm: k.MMStruct) -> k.SpinLock:
        """The lock that guards mm's pgtable_list (global-lock shares one for all mms)."""
        return mm.context.lock

    def pgtable_list(self, mm: k.MMStruct) -> k.ListHead:
        return mm.context.pgtable_list

    def pt_mm_of(self, mm: k.MMStruct) -> object:
        """What page->pt_mm holds for a page of mm (typesafe-rcu: its list struct)."""
        return mm

    def init_context(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from k.spin_lock_init(mm.context.lock)
        yield from k.INIT_LIST_HEAD(mm.context.pgtable_list)

    def destroy_context(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from ()

    def page_table_alloc(self, mm: k.MMStruct) -> k.Steps[k.Table]:
        if (yield from k.mm_alloc_pgste(mm)):
            page = yield from k.alloc_page()
            yield from k.write_pt_mm(page, self.pt_mm_of(mm))
            yield from k.atomic_xor_bits(page, 0x03 << 24)
            return k.table_of(page, None)
        table = None
        yield from k.spin_lock_bh(self.pgtable_lock(mm))
        page = yield from k.list_first_entry_or_null(self.pgtable_list(mm))
        if page is not None:
            mask = (yield from k.atomic_read(page)) >> 24
            # Cannot be on this list if either half is pending free.
            yield from k.WARN_ON_ONCE(bool(mask & ~0x03), "page_table_alloc: listed page pending")
            # One or other half must be available, but not both.
            yield from k.WARN_ON_ONCE(mask in (0x00, 0x03), "page_table_alloc: listed page full")
            bit = mask & AA  # lower allocated -> take the upper
            yield from k.atomic_xor_bits(page, AA << (bit + 24))
            yield from k.list_del(page)
            table = k.table_of(page, bit)
        yield from k.spin_unlock_bh(self.pgtable_lock(mm))
        if table is not None:
            return table
        page = yield from k.alloc_page()
        yield from k.write_pt_mm(page, self.pt_mm_of(mm))
        yield from k.atomic_xor_bits(page, AA << 24)
        yield from k.spin_lock_bh(self.pgtable_lock(mm))
        yield from k.list_add(page, self.pgtable_list(mm))
        yield from k.spin_unlock_bh(self.pgtable_lock(mm))
        return k.table_of(page, 0)

    def _warn_pt_mm(self, page: k.Page, mm: k.MMStruct, where: str) -> k.Steps[None]:
        pt_mm = yield from k.read_pt_mm(page)
        yield from k.WARN_ON_ONCE(pt_mm is not self.pt_mm_of(mm), f"{where}: page->pt_mm != mm")

    def page_table_free(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        yield from self._warn_pt_mm(page, mm, "page_table_free")
        if (yield from k.mm_alloc_pgste(mm)):
            mask = yield from k.atomic_xor_bits(page, 0x03 << 24)
            mask >>= 24
            yield from page_table_release_check(page, 0x03, mask)
            yield from k.free_page(page)
            return
        bit = table.bit
        assert bit is not None
        yield from k.spin_lock_bh(self.pgtable_lock(mm))
        # No temporary PP any more: only the AA bit is cleared.
        mask = yield from k.atomic_xor_bits(page, AA << (bit + 24))
        mask >>= 24
        if mask & 0x03:  # other half is allocated
            yield from k.list_add(page, self.pgtable_list(mm))
        elif not mask & 0x30:  # other half not pending
            yield from k.list_del(page)
        yield from k.spin_unlock_bh(self.pgtable_lock(mm))
        if mask == 0:
            yield from page_table_release_check(page, 1 << bit, mask)
            yield from k.free_page(page)

    def page_table_free_rcu(self, tlb: k.MmuGather, table: k.Table) -> k.Steps[None]:
        mm, page = tlb.mm, table.page
        yield from self._warn_pt_mm(page, mm, "page_table_free_rcu")
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.tlb_remove_table(tlb, k.tagged(page, 0x03))
            return
        bit = table.bit
        assert bit is not None
        yield from k.spin_lock_bh(self.pgtable_lock(mm))
        mask = yield from k.atomic_xor_bits(page, (AA | PP) << (bit + 24))
        mask >>= 24
        if not mask & 0x03 and mask & 0x30 != 0x30:
            # The other half is free and not pending, so the page was listed.
            yield from k.list_del(page)
        yield from k.spin_unlock_bh(self.pgtable_lock(mm))
        yield from k.tlb_remove_table(tlb, k.tagged(page, 1 << bit))

    def tlb_remove_table(self, tagged: k.Tagged) -> k.Steps[None]:
        page, half = tagged.page, tagged.tag
        if half == 0x03:
            mask = yield from k.atomic_xor_bits(page, 0x03 << 24)
            mask >>= 24
            yield from page_table_release_check(page, half, mask)
            yield from k.free_page(page)
            return
        mask = (yield from k.atomic_read(page)) >> 24
        if mask & 0x03:
            # The other half is allocated: the mm was alive at that instant.
            mm = yield from k.read_pt_mm(page)
            yield from k.spin_lock_bh(self.pgtable_lock(mm))
            mask = yield from k.atomic_xor_bits(page, half << (4 + 24))
            mask >>= 24
            if mask & 0x03:
                yield from k.list_add(page, self.pgtable_list(mm))
            yield from k.spin_unlock_bh(self.pgtable_lock(mm))
        else:
            mask = yield from k.atomic_xor_bits(page, half << (4 + 24))
            mask >>= 24
        if mask == 0:
            yield from page_table_release_check(page, half, mask)
            yield from k.free_page(page)

    def pte_free_defer(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        yield from self.pte_free_defer_check(page, mm)
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.call_rcu(page.rcu_head, self.pte_free_pgste)
            return
        bit = table.bit
        assert bit is not None
        yield from k.spin_lock_bh(self.pgtable_lock(mm))
        mask = yield from k.atomic_xor_bits(page, (AA | HH | PP) << (bit + 24))
        mask >>= 24
        if not mask & 0x03 and mask & 0x30 != 0x30:
            yield from k.list_del(page)
        yield from k.spin_unlock_bh(self.pgtable_lock(mm))
        if mask & 0x0C != 0x0C:
            # The other half's use of rcu_head is not in flight: queue ours.
            yield from k.call_rcu(page.rcu_head, self.pte_free_now[bit])

    def pte_free_defer_check(self, page: k.Page, mm: k.MMStruct) -> k.Steps[None]:
        yield from self._warn_pt_mm(page, mm, "pte_free_defer")

    def pte_free_pgste(self, head: k.PageRcuHead) -> k.Steps[None]:
        yield from k.hook("tlb_remove_table", k.tagged(head.page, 0x03))

    def pte_free_half(self, head: k.PageRcuHead, bit: int) -> k.Steps[None]:
        page = head.page
        mask = yield from k.atomic_xor_bits(page, HH << (bit + 24))
        yield from k.hook("tlb_remove_table", k.tagged(page, 1 << bit))
        # As posted: no `mask >>= 24`, so this reads the low bits of
        # _refcount (the page's own count, 1), not the HH bits (see header).
        if mask & 0x0C:
            yield from k.call_rcu(page.rcu_head, self.pte_free_now[bit ^ 1])

    def pte_free_now0(self, head: k.PageRcuHead) -> k.Steps[None]:
        yield from self.pte_free_half(head, 0)

    def pte_free_now1(self, head: k.PageRcuHead) -> k.Steps[None]:
        yield from self.pte_free_half(head, 1)

    @property
    def pte_free_now(self) -> tuple[k.Callback, k.Callback]:
        return (self.pte_free_now0, self.pte_free_now1)

    def tlb_flush_mm_lazy(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from self.flush_lock(mm.context.lock)
        yield from k.flush_mm_if_pending(mm)
        yield from self.flush_unlock(mm.context.lock)

    def invariants(self, world: World) -> Iterator[str]:
        for mm in world.mms:
            if mm.freed or self.pgtable_lock(mm).holder is not None:
                continue
            pgtable_list = self.pgtable_list(mm)
            for page in pgtable_list.entries:
                if not page.freed and page.refbyte not in (0x01, 0x02):
                    yield (
                        f"{page} on {pgtable_list} with _refcount byte "
                        f"{page.refbyte:#04x}: listed pages have one half allocated, none pending"
                    )
