"""pre-c2c-5.16: the allocator before c2c224932fd0, the historical positive control.

Source:   v5.16 arch/s390/mm/pgalloc.c page_table_free, as the fix's stable
          backport shows it: "[PATCH 5.16 0857/1039] s390/mm: fix 2KB pgtable
          release race", Message-ID <20220124184154.086990808@linuxfoundation.org>
          (mainline c2c224932fd0, Alexander Gordeev). Its 3-line diff, undone:
          page_table_free clears only its AA bit under the lock (1U, not
          0x11U), and has no second atomic_xor_bits after the unlock.
Rule:     upstream-6.4 (designs/upstream_6_4.py) in every other hook.
Audit:    page_table_free matches the v5.16 C as the backport's context and
          removed lines show it: pgtable_pte_page_dtor and __free_page at
          once, with no page_table_release_check (a later addition; it
          could not fire there, the byte being 0 at both frees); the rest
          is upstream-6.4, with that module's differences. Choice: the
          other hooks are v6.4's, not v5.16's, so
          that this design differs from upstream-6.4 in the fix alone
          (designs.md, "pre-c2c-5.16"); the model does not claim v5.16's other
          functions were the same.
Verdicts: known from history, a use-after-free, the race c2c224932fd0's
  message draws: one half is freed through page_table_free_rcu (its PP set,
  the page kept on the list because the other half is allocated) and its
  __tlb_remove_table queued; the other half's page_table_free clears its AA
  bit under the lock, which leaves only that PP; before its list_del, the
  callback's atomic_xor_bits reaches 0 and frees the page; the list_del
  writes freed memory. Found by the machine: the default run's exhaustive
  first pass (bound S=3 C=1 P=0 I=1) reaches it in 4 rule calls, MADV_DONTNEED's
  pte_free interrupted between its atomic_xor_bits and its list_del while
  the other CPU runs the munmap batch's __tlb_remove_table; the diagram was
  read against c2c224932fd0's message: the same steps in the same order. The
  random survey alone does not find it (0 of 6,779 runs in the default run;
  benchmarks/find_speed.py measures its power over fresh seeds). Every other
  property: held, as upstream-6.4, from which it differs in the fix alone.
"""

from __future__ import annotations

from designs.base import AA
from designs.upstream_6_4 import Upstream64
from stateful.kernel import api as k


class PreC2c516(Upstream64):
    name = "pre-c2c-5.16"
    title = "v6.4 allocator with v5.16's page_table_free: no temporary PP"
    source = "v5.16 page_table_free, before c2c224932fd0 (stable backport of the fix)"
    known: dict[str, str] = {
        "use-after-free": "page_table_free's list_del after the other half's "
        "__tlb_remove_table freed the page (the race c2c224932fd0 fixes)",
    }
    supports_defer = False

    def page_table_free(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        if (yield from k.mm_alloc_pgste(mm)):
            yield from k.atomic_xor_bits(page, 0x03 << 24)
            yield from k.free_page(page)
            return
        bit = table.bit
        assert bit is not None
        yield from k.spin_lock_bh(mm.context.lock)
        # Only the AA bit: from here a __tlb_remove_table of the other half
        # may see the byte reach 0 and free the page under the list_del below.
        mask = yield from k.atomic_xor_bits(page, AA << (bit + 24))
        mask >>= 24
        yield from self.free_list_step(mm, page, mask, tail=False)
        yield from k.spin_unlock_bh(mm.context.lock)
        if mask == 0:
            # No page_table_release_check: v5.16 had none.
            yield from k.free_page(page)
