"""no-readd: no pgtable_list, no page->lru; a freed 2K half is never handed out again.

Source:   the road the thread named and nobody built. Gerald Schaefer, in the
          seed (linux-mm, 14 Jun 2023, re hugh-hh): should the unstable mm be
          unsolvable, take "more drastic measures", "removing the list and
          need for page->lru completely, and not adding back fragments at
          all"; Alexander Gordeev, 23 Jun 2023, Message-ID
          <ZJVl7ZJiborhmtYh@li-008a6a4c-3549-11b2-a85c-c5cc2836eea2.ibm.com>:
          "not to reuse page tables returned via pte_free_defer() or not to
          reuse them at all". Built here as the simplest honest version, on
          v6.4's bits; there is no posted C to match.
Rule:     a new 4K page hands out its lower half at once and its upper half
          to the next page_table_alloc of the same mm, through one per-mm
          pointer, mm->context.pgtable_page, read and written under
          spin_lock_bh(&mm->context.lock): the page whose upper half is still
          unused. A half that was handed out and freed is never handed out
          again: nothing points to it. The page is freed when both halves
          are gone, by the atomic_xor_bits that clears the last bit, as in
          v6.4 (AA = 0x01 << bit allocated, PP = 0x10 << bit pending in
          __tlb_remove_table). __tlb_remove_table takes no lock and never
          touches the mm. No list, so page->lru is never used, and
          page->rcu_head is free whenever the page needs it.
A never-used half:
  - at free: page_table_free and page_table_free_rcu, under the lock, clear
    mm->context.pgtable_page if it points to their page (only the lower half
    can be freed while the upper was never handed out); the upper half is
    then given up, and the page goes when its lower half does;
  - when two allocations of one mm race (each allocated a fresh page), the
    later one's pointer replaces the earlier's: that page's upper half is
    given up at once, wasted until its lower half is freed, not leaked;
  - at exit: exit_mmap frees every table of the mm, each lower half clearing
    the pointer as above, so it is NULL by destroy_context, which has
    nothing to do.
pte_free_defer: merged-6.6's scheme, not the HH bits of hugh-hh: SetPageActive,
          then page_table_free; when the byte reaches 0 (in page_table_free or
          __tlb_remove_table), TestClearPageActive decides call_rcu(&page->
          rcu_head, pte_free_now), which frees the page, or a free at once.
          The deferred half is never reused anyway; the call_rcu keeps its
          page from the page allocator until a grace period after the last
          half went. Chosen because it needs no second bit per half and no
          rcu_head shared by two pending halves (the posted HH scheme's
          unshifted `mask & 0x0CU` leaks, see hugh-hh).
Left out, as in upstream-6.4 (see its header): pgtable_pte_page_ctor/dtor,
  arch_set_page_dat, memset64, allocation failure, gmap_unlink and
  __tlb_remove_table's case 0x00. page_table_release_check is v6.4's (no
  list_empty test: no list). PGSTE mms use a whole 4K page as in v6.4 and
  never touch the pointer; pte_free_defer keeps merged-6.6's
  WARN_ON_ONCE(mm_has_pgste(mm)) (not mm_alloc_pgste, which is true for
  mms that keep THP, so khugepaged does call pte_free_defer there).
  __tlb_flush_mm_lazy: v6.4's plain spin_lock, since no path here takes mm->context.lock in softirq.
Verdicts (expected, before the machine ran): every property held.
  - double-alloc, early-reuse: the only half ever handed out a second time
    is none; the upper half goes out once, from the pointer cleared in the
    same critical section, and a deferred page is freed a grace period late;
  - use-after-free, double-free: the pointer is cleared under the lock
    before the free's atomic_xor_bits can reach 0, and nothing after that
    xor touches the page but its own release (no list_del to race, so no
    c2c224932fd0 window and no temporary PP needed);
  - list-corruption, rcu-head-reuse: no list; the rcu_head is queued once,
    by whichever path cleared the last bit and the Active flag;
  - deadlock, lockdep: mm->context.lock is taken in task context only;
  - leak: every never-used half is given up with its lower half (above).
Verdicts (the machine's): as expected, nothing found, so `known` is empty.
  `pytest tests/test_verdicts.py --design no-readd` (the exhaustive first
  pass, then 6,000 examples x 40 steps, derandomized): 6,000 runs, every one
  drained clean, no report; `python benchmarks/exhaustive_speed.py --table`:
  every property proved at the default bound (S=3 C=1 P=1 I=1, 2 CPUs, 1 mm,
  2 tables, no exit: 1,530 scenarios, 2,351,202 interleavings). The
  search's power on this design is checked by two broken variants it must
  find (tests/test_no_readd.py): the pointer never cleared at free, and the
  free's xor before its lock.
Cost: every freed half is wasted until its page's other half goes; the
  memory measures (stateful/measures/) say how much, per workload.
Invariant: the page mm->context.pgtable_page points to is live, with only
  its lower half allocated (byte 0x01).
"""

from __future__ import annotations

from collections.abc import Iterator

from designs.base import AA, PP, Design
from designs.upstream_6_4 import page_table_release_check
from stateful.kernel import api as k
from stateful.kernel.world import World

PGTABLE_PAGE = "pgtable_page"  # mm->context.pgtable_page


class NoReadd(Design):
    name = "no-readd"
    title = "no list: a per-mm pointer to the page whose upper half is unused; no reuse"
    source = (
        "Gerald Schaefer's 'not adding back fragments at all' (seed, 14 Jun 2023) and "
        "Alexander Gordeev <ZJVl7ZJiborhmtYh@li-008a6a4c-3549-11b2-a85c-c5cc2836eea2.ibm.com>"
    )
    known: dict[str, str] = {}
    supports_defer = True

    def init_context(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from k.spin_lock_init(mm.context.lock)
        yield from k.write_mm_context(mm, PGTABLE_PAGE, None)

    def destroy_context(self, mm: k.MMStruct) -> k.Steps[None]:
        # exit_mmap freed every table, each lower half clearing the pointer.
        yield from ()

    def page_table_alloc(self, mm: k.MMStruct) -> k.Steps[k.Table]:
        if not (yield from k.mm_alloc_pgste(mm)):
            table = None
            yield from k.spin_lock_bh(mm.context.lock)
            page = yield from k.read_mm_context(mm, PGTABLE_PAGE)
            if page is not None:
                yield from k.write_mm_context(mm, PGTABLE_PAGE, None)
                yield from k.atomic_xor_bits(page, AA << (1 + 24))
                table = k.table_of(page, 1)
            yield from k.spin_unlock_bh(mm.context.lock)
            if table is not None:
                return table
        page = yield from k.alloc_page()
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.atomic_xor_bits(page, 0x03 << 24)
            return k.table_of(page, None)
        yield from k.atomic_xor_bits(page, AA << 24)
        yield from k.spin_lock_bh(mm.context.lock)
        # A racing allocation's page, if any, gives up its upper half here.
        yield from k.write_mm_context(mm, PGTABLE_PAGE, page)
        yield from k.spin_unlock_bh(mm.context.lock)
        return k.table_of(page, 0)

    def give_up_unused_half(self, mm: k.MMStruct, page: k.Page) -> k.Steps[None]:
        """Under the lock: if page's upper half was never handed out, it never will be."""
        if (yield from k.read_mm_context(mm, PGTABLE_PAGE)) is page:
            yield from k.write_mm_context(mm, PGTABLE_PAGE, None)

    def page_table_free(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        if (yield from k.mm_alloc_pgste(mm)):
            mask = yield from k.atomic_xor_bits(page, 0x03 << 24)
            mask >>= 24
            yield from self.page_table_release(page, 0x03, mask)
            return
        bit = table.bit
        assert bit is not None
        yield from k.spin_lock_bh(mm.context.lock)
        yield from self.give_up_unused_half(mm, page)
        yield from k.spin_unlock_bh(mm.context.lock)
        mask = yield from k.atomic_xor_bits(page, AA << (bit + 24))
        mask >>= 24
        if mask == 0:
            yield from self.page_table_release(page, 1 << bit, mask)

    def page_table_free_rcu(self, tlb: k.MmuGather, table: k.Table) -> k.Steps[None]:
        mm, page = tlb.mm, table.page
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.tlb_remove_table(tlb, k.tagged(page, 0x03))
            return
        bit = table.bit
        assert bit is not None
        yield from k.spin_lock_bh(mm.context.lock)
        yield from self.give_up_unused_half(mm, page)
        yield from k.spin_unlock_bh(mm.context.lock)
        yield from k.atomic_xor_bits(page, (AA | PP) << (bit + 24))
        yield from k.tlb_remove_table(tlb, k.tagged(page, 1 << bit))

    def tlb_remove_table(self, tagged: k.Tagged) -> k.Steps[None]:
        page, half = tagged.page, tagged.tag
        if half == 0x03:
            mask = yield from k.atomic_xor_bits(page, 0x03 << 24)
            mask >>= 24
        else:
            mask = yield from k.atomic_xor_bits(page, half << (4 + 24))
            mask >>= 24
            if mask != 0:
                return
        yield from self.page_table_release(page, half, mask)

    def page_table_release(self, page: k.Page, half: int, mask: int) -> k.Steps[None]:
        """The last bit is gone: free the page, a grace period late if a half was deferred."""
        yield from page_table_release_check(page, half, mask)
        if (yield from k.TestClearPageActive(page)):
            yield from k.call_rcu(page.rcu_head, self.pte_free_now)
        else:
            yield from k.free_page(page)

    def pte_free_now(self, head: k.PageRcuHead) -> k.Steps[None]:
        yield from k.free_page(head.page)

    def pte_free_defer(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        yield from k.SetPageActive(table.page)
        yield from k.hook("page_table_free", mm, table)
        pgste = yield from k.mm_has_pgste(mm)
        yield from k.WARN_ON_ONCE(pgste, "pte_free_defer: mm_has_pgste(mm)")

    def tlb_flush_mm_lazy(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from k.spin_lock(mm.context.lock)
        yield from k.flush_mm_if_pending(mm)
        yield from k.spin_unlock(mm.context.lock)

    def invariants(self, world: World) -> Iterator[str]:
        """Checked only while the lock is free: a holder may be mid-update."""
        for mm in world.mms:
            if mm.freed or mm.context.lock.holder is not None:
                continue
            page = mm.context.arch.get(PGTABLE_PAGE)
            if page is None or page.freed:
                continue  # a freed one: the next access to it reports the use-after-free
            if page.refbyte != AA:
                yield (
                    f"{mm}->context.pgtable_page = {page} with _refcount byte "
                    f"{page.refbyte:#04x}: not only the lower half allocated"
                )
