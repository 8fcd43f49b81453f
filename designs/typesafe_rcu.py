"""typesafe-rcu: [PATCH v2 07/12] with pgtable_list and its lock in a SLAB_TYPESAFE_BY_RCU struct.

Source:   linux-s390, Hugh Dickins, 22 Jun 2023, "prospective 13/12 s390
          pgtable_list patch": "s390: SLAB_TYPESAFE_BY_RCU
          mm->context.pgtable_list", Message-ID
          <a69a26c0-ec93-3ad-a443-6655b5e49df2@google.com>, on top of
          [PATCH v2 07/12] (global-lock, Message-ID
          <a722dbec-bd9e-1213-1edd-53cd547aa4f@google.com>).
Rule:     v2's: a page is not on the list while either half is pending free;
          __tlb_remove_table relinks it afterwards (other half allocated) or
          frees it. The list and its lock move out of mm->context into
          `struct pgtable_list { list; lock; }` from a kmem cache created
          with SLAB_TYPESAFE_BY_RCU | SLAB_PANIC, whose constructor runs
          INIT_LIST_HEAD and spin_lock_init once per object, never on reuse.
          page->pt_list (in the pt_mm union) points to it, not to the mm.
          __tlb_remove_table, under rcu_read_lock(), takes page->pt_list's
          lock when its atomic_read saw the other half allocated, and
          rechecks the AA bits under it: the struct may be free, or another
          mm's, but it is still a pgtable_list with a lock in the right place.
          mm->context.lock stays, for tlb_flush_mm_lazy's plain spin_lock.
Differences from the posted C (v2 + 13/12), each a modelling choice:
  - init_mm and init_pgtable_list are not modelled: the model has no init_mm.
    Its pgtable_list is static, never freed, and serves only the kernel's own
    page tables (vmem), which no mm exit frees and no mmu_gather or
    pte_free_defer reaches, so it has no lifetime to race with.
  - alloc_pgtable_list creates the cache on the first call, as posted, in the
    same step as its `!pgtable_list_cachep` test (kmem_cache_create is boot-time
    setup here, not a step); the first call is the first exec, before any
    concurrency. kmem_cache_alloc does not fail, so init_new_context's -ENOMEM
    return is not modelled.
  - left out, as in upstream-6.4 (see its header): pgtable_pte_page_ctor/dtor,
    arch_set_page_dat, memset64, allocation failure, gmap_unlink and
    __tlb_remove_table's case 0x00; page_table_release_check is upstream-6.4's.
  pte_free_half, pte_free_now0/1, pte_free_pgste and tlb_flush_mm_lazy are
  v2's, inherited from hugh-hh (designs/hugh_hh.py); v2 has no page->pt_mm
  warnings, so neither has this module.
Verdicts (the machine's, each diagram read against the posted C; scenarios in
tests/test_typesafe_rcu.py):
  `pytest -n 0 tests/test_verdicts.py --design typesafe-rcu` (6,000 examples x 40
  steps, derandomized): 6,000 runs, 202 ended in the leak, the rest drained
  clean; `python benchmarks/find_speed.py --survey --design typesafe-rcu --runs 3`:
  the leak in 3 of 3 seeds, nothing else.
  - leak: v2's posted pte_free_half tests `mask & 0x0CU` on the whole
    _refcount (no `mask >>= 24`), i.e. the page's own count, 1: when both
    halves are deferred within one grace period, the second pte_free_defer
    leaves its call_rcu to the first's pte_free_half, which never makes it;
    the page keeps that half's HH and PP bits (0x14 or 0x28) for ever. With
    the shift (the test's Intended variant) the page is freed;
  - held, use-after-free with the struct freed and handed to another mm: the stale
    __tlb_remove_table locks memory that is still a pgtable_list and finds the
    AA bits clear (the old mm's exit cleared them under that lock);
  - held, use-after-free with the slab memory returned: rcu_free_slab waits for the
    rcu_read_lock() section of a __tlb_remove_table that saw an AA bit; one
    merely queued is no reader, but it finds the bits clear and never follows
    page->pt_list (a variant locking without the atomic_read is a
    use-after-free: tests/test_typesafe_rcu.py, LockAlways);
  - held, deadlock and lockdep: pgtable_list->lock is taken with spin_lock_bh
    everywhere; mm->context.lock is never taken in softirq.
"""

from __future__ import annotations

from collections.abc import Iterator

from attrs import define, field

from designs.hugh_hh import HughHH
from designs.upstream_6_4 import page_table_release_check
from stateful.kernel import api as k
from stateful.kernel.world import World


@define(eq=False, repr=False)
class PgtableList(k.SlabObject):
    """struct pgtable_list { struct list_head list; spinlock_t lock; }"""

    prefix = "pt"
    list: k.ListHead = field(init=False)
    lock: k.SpinLock = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.list = k.ListHead(f"{self.name}->list", container=self)
        # One lockdep class for every struct, as for any lock in a kmem cache.
        self.lock = k.SpinLock(f"&{self.name}->lock", "&pgtable_list->lock", container=self)


def pgtable_list_ctor(pgtable_list: PgtableList) -> k.Steps[None]:
    """Run when a new slab is made, never on reuse: the memory stays a valid lock."""
    yield from k.INIT_LIST_HEAD(pgtable_list.list)
    yield from k.spin_lock_init(pgtable_list.lock)


class TypesafeRcu(HughHH):
    name = "typesafe-rcu"
    title = "v2 with pgtable_list + lock in a SLAB_TYPESAFE_BY_RCU struct"
    source = (
        "linux-s390, Hugh Dickins, 22 Jun 2023, prospective 13/12 "
        "<a69a26c0-ec93-3ad-a443-6655b5e49df2@google.com>, on [PATCH v2 07/12]"
    )
    known = {
        "leak": "both halves deferred in one grace period: the posted pte_free_half tests "
        "`mask & 0x0CU` without `mask >>= 24` (the page's own count, 1), so the second "
        "half is never queued and the page never freed",
    }
    supports_defer = True

    # The cache's flags: SLAB_TYPESAFE_BY_RCU | SLAB_PANIC (a test turns it off).
    typesafe_by_rcu = True

    def __init__(self) -> None:
        self.pgtable_list_cachep: k.KmemCache | None = None

    def mm_pgtable_list(self, mm: k.MMStruct) -> PgtableList:
        """mm->context.pgtable_list: the pointer init_new_context stored."""
        pgtable_list = mm.context.arch["pgtable_list"]
        assert isinstance(pgtable_list, PgtableList)
        return pgtable_list

    # The names hugh-hh's inherited code and the measures use.
    def pgtable_lock(self, mm: k.MMStruct) -> k.SpinLock:
        return self.mm_pgtable_list(mm).lock

    def pgtable_list(self, mm: k.MMStruct) -> k.ListHead:
        return self.mm_pgtable_list(mm).list

    def pt_mm_of(self, mm: k.MMStruct) -> object:
        return self.mm_pgtable_list(mm)

    def alloc_pgtable_list(self, mm: k.MMStruct) -> k.Steps[bool]:
        if self.pgtable_list_cachep is None:  # first time
            self.pgtable_list_cachep = k.kmem_cache_create(
                "pgtable_list",
                PgtableList,
                typesafe_by_rcu=self.typesafe_by_rcu,
                ctor=pgtable_list_ctor,
            )
        pgtable_list = yield from k.kmem_cache_alloc(self.pgtable_list_cachep)
        mm.context.arch["pgtable_list"] = pgtable_list
        return pgtable_list is not None

    def init_context(self, mm: k.MMStruct) -> k.Steps[None]:
        # kmem_cache_alloc does not fail here, so neither does init_new_context.
        yield from self.alloc_pgtable_list(mm)
        yield from k.spin_lock_init(mm.context.lock)

    def destroy_context(self, mm: k.MMStruct) -> k.Steps[None]:
        assert self.pgtable_list_cachep is not None
        yield from k.kmem_cache_free(self.pgtable_list_cachep, self.mm_pgtable_list(mm))

    def page_table_alloc(self, mm: k.MMStruct) -> k.Steps[k.Table]:
        pgtable_list = self.mm_pgtable_list(mm)
        if not (yield from k.mm_alloc_pgste(mm)):
            table = None
            yield from k.spin_lock_bh(pgtable_list.lock)
            page = yield from k.list_first_entry_or_null(pgtable_list.list)
            if page is not None:
                mask = (yield from k.atomic_read(page)) >> 24
                # Cannot be on this list if either half pending free
                yield from k.WARN_ON_ONCE(bool(mask & ~0x03), "page_table_alloc: mask & ~0x03U")
                # One or other half must be available, but not both
                yield from k.WARN_ON_ONCE(
                    mask == 0x00 or mask == 0x03, "page_table_alloc: mask == 0x00U || 0x03U"
                )
                bit = mask & 0x01  # =1 -> second 2K available
                table = k.table_of(page, bit)
                yield from k.atomic_xor_bits(page, 0x01 << (bit + 24))
                yield from k.list_del(page)
            yield from k.spin_unlock_bh(pgtable_list.lock)
            if table is not None:
                return table
        page = yield from k.alloc_page()
        yield from k.write_pt_mm(page, pgtable_list, member="pt_list")
        if (yield from k.mm_alloc_pgste(mm)):
            # Return 4K page table with PGSTEs
            yield from k.atomic_xor_bits(page, 0x03 << 24)
            return k.table_of(page, None)
        # Return the first 2K fragment of the page
        yield from k.atomic_xor_bits(page, 0x01 << 24)
        yield from k.spin_lock_bh(pgtable_list.lock)
        yield from k.list_add(page, pgtable_list.list)
        yield from k.spin_unlock_bh(pgtable_list.lock)
        return k.table_of(page, 0)

    def page_table_free(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        if not (yield from k.mm_alloc_pgste(mm)):
            bit = table.bit
            assert bit is not None
            pgtable_list = self.mm_pgtable_list(mm)
            yield from k.spin_lock_bh(pgtable_list.lock)
            mask = yield from k.atomic_xor_bits(page, 0x01 << (bit + 24))
            mask >>= 24
            if mask & 0x03:  # other half is allocated
                yield from k.list_add(page, pgtable_list.list)
            elif not mask & 0x30:  # other half not pending
                yield from k.list_del(page)
            yield from k.spin_unlock_bh(pgtable_list.lock)
            if mask != 0x00:
                return
            half = 0x01 << bit
        else:
            half = 0x03
            mask = yield from k.atomic_xor_bits(page, 0x03 << 24)
            mask >>= 24
        yield from page_table_release_check(page, half, mask)
        yield from k.free_page(page)

    def page_table_free_rcu(self, tlb: k.MmuGather, table: k.Table) -> k.Steps[None]:
        mm, page = tlb.mm, table.page
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.tlb_remove_table(tlb, k.tagged(page, 0x03))
            return
        bit = table.bit
        assert bit is not None
        pgtable_list = self.mm_pgtable_list(mm)
        yield from k.spin_lock_bh(pgtable_list.lock)
        mask = yield from k.atomic_xor_bits(page, 0x11 << (bit + 24))
        mask >>= 24
        # Other half not allocated? Other half not already pending free?
        if mask & 0x03 == 0x00 and mask & 0x30 != 0x30:
            yield from k.list_del(page)
        yield from k.spin_unlock_bh(pgtable_list.lock)
        yield from k.tlb_remove_table(tlb, k.tagged(page, 0x01 << bit))

    def tlb_remove_table(self, tagged: k.Tagged) -> k.Steps[None]:
        page = tagged.page
        mask = half = tagged.tag
        if half in (0x01, 0x02):
            yield from k.rcu_read_lock()
            if (yield from k.atomic_read(page)) & (0x03 << 24):
                pgtable_list = yield from k.read_pt_mm(page, member="pt_list")
                # The mm may have been freed since the _refcount check, but
                # SLAB_TYPESAFE_BY_RCU keeps pgtable_list a valid pgtable_list
                # with its lock in place, even if it is no longer "ours":
                # take that lock and recheck the AA bits under it.
                yield from k.spin_lock_bh(pgtable_list.lock)
                mask = yield from k.atomic_xor_bits(page, mask << 28)
                mask >>= 24
                if mask & 0x03:
                    yield from k.list_add(page, pgtable_list.list)
                yield from k.spin_unlock_bh(pgtable_list.lock)
            else:
                mask = yield from k.atomic_xor_bits(page, mask << 28)
                mask >>= 24
            yield from k.rcu_read_unlock()
            if mask != 0x00:
                return
        else:  # 0x03: 4K page table with pgstes
            mask = yield from k.atomic_xor_bits(page, 0x03 << 24)
            mask >>= 24
        yield from page_table_release_check(page, half, mask)
        yield from k.free_page(page)

    def pte_free_defer(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.call_rcu(page.rcu_head, self.pte_free_pgste)
            return
        bit = table.bit
        assert bit is not None
        pgtable_list = self.mm_pgtable_list(mm)
        yield from k.spin_lock_bh(pgtable_list.lock)
        mask = yield from k.atomic_xor_bits(page, 0x15 << (bit + 24))
        mask >>= 24
        # Other half not allocated? Other half not already pending free?
        if mask & 0x03 == 0x00 and mask & 0x30 != 0x30:
            yield from k.list_del(page)
        yield from k.spin_unlock_bh(pgtable_list.lock)
        # Do not relink on rcu_head if other half already linked on rcu_head
        if mask & 0x0C != 0x0C:
            yield from k.call_rcu(page.rcu_head, self.pte_free_now1 if bit else self.pte_free_now0)

    def invariants(self, world: World) -> Iterator[str]:
        if self.pgtable_list_cachep is None:
            return
        for pgtable_list in self.pgtable_list_cachep.objects:
            if not isinstance(pgtable_list, PgtableList) or pgtable_list.lock.holder is not None:
                continue
            for page in pgtable_list.list.entries:
                if not page.freed and page.refbyte not in (0x01, 0x02):
                    yield (
                        f"{page} on {pgtable_list.list} with _refcount byte {page.refbyte:#04x}: "
                        "listed pages have one half allocated, none pending"
                    )
            if not pgtable_list.allocated and pgtable_list.list.entries:
                yield (
                    f"{pgtable_list} is free (kmem_cache_free) with "
                    f"{pgtable_list.list.entries} still on {pgtable_list.list}: "
                    "the next mm to get it inherits them"
                )
