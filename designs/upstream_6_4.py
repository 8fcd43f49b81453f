"""upstream-6.4: s390 2K page-table fragments as of v6.4, after c2c224932fd0.

Source:   arch/s390/mm/pgalloc.c at v6.4: page_table_alloc, page_table_free,
          page_table_free_rcu, __tlb_remove_table and page_table_release_check;
          __tlb_flush_mm_lazy from arch/s390/include/asm/tlbflush.h. The
          temporary PP bit of page_table_free is commit c2c224932fd0
          ("s390/mm: fix 2KB pgtable release race").
Audit:    matches the v6.4 C, hook by hook, except what the model leaves out:
  - pgtable_pte_page_ctor/dtor, arch_set_page_dat and the memset64 of a new
    table: they touch only the page the caller owns at that moment (just
    allocated, or about to be freed), so no other CPU can race with them;
  - alloc_page and pgtable_pte_page_ctor never fail here (GFP_KERNEL);
  - gmap_unlink in page_table_free_rcu's PGSTE path: the model has no gmap;
    it takes the gmap's own locks, not mm->context.lock, and leaves the
    _refcount byte and pgtable_list alone;
  - __tlb_remove_table's case 0x00 (pmd/pud/p4d): only PTE tables are modelled;
  - gmap_create/gmap_remove, the other plain spin_lock users of
    mm->context.lock, are represented by __tlb_flush_mm_lazy.
  page_table_release_check (CONFIG_DEBUG_VM) is modelled: it dump_page()s a
  page released with fragment bits left in its byte. The kernel only prints
  the dump and frees the page all the same; the model reports it as bad-bits
  through WARN_ON_ONCE, so the run goes on as the kernel's does. It has no
  step of its own when the byte is 0, as the C reads nothing then.
Verdicts: every property held; early-reuse not applicable.
  - no pte_free_defer: the design offers nothing that must wait for RCU readers;
  - the temporary PP bit keeps a concurrent __tlb_remove_table of the other
    half from seeing 0 and freeing the page before page_table_free's list_del;
  - page_table_alloc skips pending halves, so AA and PP of a half never meet;
  - __tlb_remove_table never touches the mm, so the mm's lifetime cannot bite.
Invariant: a page on pgtable_list has exactly one half allocated.
"""

from __future__ import annotations

from collections.abc import Iterator

from designs.base import AA, PP, Design
from stateful.kernel import api as k
from stateful.kernel.world import World


class Upstream64(Design):
    name = "upstream-6.4"
    title = "v6.4 allocator: temporary PP bit, lock-free __tlb_remove_table"
    source = "v6.4 arch/s390/mm/pgalloc.c (after c2c224932fd0)"
    known: dict[str, str] = {}
    supports_defer = False

    def init_context(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from k.spin_lock_init(mm.context.lock)
        yield from k.INIT_LIST_HEAD(mm.context.pgtable_list)

    def destroy_context(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from ()

    def page_table_alloc(self, mm: k.MMStruct) -> k.Steps[k.Table]:
        if (yield from k.mm_alloc_pgste(mm)):
            page = yield from k.alloc_page()
            yield from self.pgste_page_init(page)
            yield from k.atomic_xor_bits(page, 0x03 << 24)
            return k.table_of(page, None)
        table = None
        yield from k.spin_lock_bh(mm.context.lock)
        page = yield from k.list_first_entry_or_null(mm.context.pgtable_list)
        if page is not None:
            mask = (yield from k.atomic_read(page)) >> 24
            # Pending halves count as taken: a half with PP set is not free yet.
            mask = (mask | (mask >> 4)) & 0x03
            if mask != 0x03:
                bit = mask & 1  # 1 -> the upper 2K is the free one
                yield from k.atomic_xor_bits(page, AA << (bit + 24))
                yield from self.alloc_list_del(page)
                table = k.table_of(page, bit)
        yield from k.spin_unlock_bh(mm.context.lock)
        if table is not None:
            return table
        page = yield from k.alloc_page()
        yield from k.atomic_xor_bits(page, AA << 24)
        yield from k.spin_lock_bh(mm.context.lock)
        yield from k.list_add(page, mm.context.pgtable_list)
        yield from k.spin_unlock_bh(mm.context.lock)
        return k.table_of(page, 0)

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
        # The temporary PP (c2c224932fd0): until it drops below, a racing
        # __tlb_remove_table of the other half cannot see 0 and free the page.
        mask = yield from k.atomic_xor_bits(page, (AA | PP) << (bit + 24))
        mask >>= 24
        yield from self.free_list_step(mm, page, mask, tail=False)
        yield from k.spin_unlock_bh(mm.context.lock)
        mask = yield from k.atomic_xor_bits(page, PP << (bit + 24))
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
        mask = yield from k.atomic_xor_bits(page, (AA | PP) << (bit + 24))
        mask >>= 24
        # At the tail: the half is not reusable until its PP clears.
        yield from self.free_list_step(mm, page, mask, tail=True)
        yield from k.spin_unlock_bh(mm.context.lock)
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

    # The steps later designs change; a design module overrides only these.

    def pgste_page_init(self, page: k.Page) -> k.Steps[None]:
        yield from ()

    def alloc_list_del(self, page: k.Page) -> k.Steps[None]:
        yield from k.list_del(page)

    def free_list_step(self, mm: k.MMStruct, page: k.Page, mask: int, tail: bool) -> k.Steps[None]:
        """Under the lock, after this half's AA was cleared: relink or unlink."""
        if mask & 0x03:
            add = k.list_add_tail if tail else k.list_add
            yield from add(page, mm.context.pgtable_list)
        else:
            yield from k.list_del(page)

    def page_table_release(self, page: k.Page, half: int = 0, mask: int = 0) -> k.Steps[None]:
        """The end of page_table_free and __tlb_remove_table: `mask` is the
        byte left (0 on the 2K paths, which return before this otherwise)."""
        yield from page_table_release_check(page, half, mask)
        yield from k.free_page(page)

    def tlb_flush_mm_lazy(self, mm: k.MMStruct) -> k.Steps[None]:
        yield from k.spin_lock(mm.context.lock)
        yield from k.flush_mm_if_pending(mm)
        yield from k.spin_unlock(mm.context.lock)

    def invariants(self, world: World) -> Iterator[str]:
        yield from listed_pages_have_one_half_allocated(world)


def page_table_release_check(page: k.Page, half: int, mask: int) -> k.Steps[None]:
    """CONFIG_DEBUG_VM's dump_page of a page released with bits left in its
    byte; reported as bad-bits through WARN_ON_ONCE (see the module header)."""
    if mask:
        yield from k.WARN_ON_ONCE(
            True,
            f"page_table_release_check: dump_page({page}): Invalid pgtable "
            f"release half {half:#04x} mask {mask:#04x}",
        )


def listed_pages_have_one_half_allocated(world: World) -> Iterator[str]:
    """Checked only while the list's lock is free: holders may be mid-update."""
    for mm in world.mms:
        if mm.freed or mm.context.lock.holder is not None:
            continue
        for page in mm.context.pgtable_list.entries:
            if page.freed:
                continue  # the next access to it reports the use-after-free
            if page.refbyte & 0x03 not in (0x01, 0x02):
                yield (
                    f"{page} on {mm.context.pgtable_list} with _refcount byte "
                    f"{page.refbyte:#04x}: not exactly one half allocated"
                )
