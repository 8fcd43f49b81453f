"""global-lock: hugh-hh with one static global spinlock for every pgtable_list.

Source:   linux-mm, Hugh Dickins, 20 Jun 2023, "[PATCH v2 07/12] s390: add
          pte_free_defer() for pgtables sharing page": a single
          `static DEFINE_SPINLOCK(mm_pgtable_list_lock)`, meant to be split
          per mm later (see typesafe-rcu).
Rule:     hugh-hh's, with mm_pgtable_list_lock (spin_lock_bh) wherever hugh-hh
          took mm->context.lock for the list. __tlb_remove_table reads
          page->pt_mm before the lock and touches that mm's list only if an
          AA bit is still set under the lock: the mm's own exit clears its AA
          bits under the same lock, so the mm is alive whenever it is used.
          mm->context.lock and tlb_flush_mm_lazy's plain spin_lock are untouched.
Verdicts (expected): every property held.
  - deadlock, lockdep: the lock taken in softirq is always taken with
    spin_lock_bh, and tlb_flush_mm_lazy's plain spin_lock is another lock;
  - use-after-free: the unstable mm is gone, the decision to use the mm is
    made under the lock that its exit must take;
  - the cost is contention across all mms (the contention measure).
Choice:   v2 drops pte_free_defer's pt_mm warning; the other two warnings stay.
"""

from __future__ import annotations

from designs.hugh_hh import HughHH
from stateful.kernel import api as k


class GlobalLock(HughHH):
    name = "global-lock"
    title = "hugh-hh with one global mm_pgtable_list_lock (spin_lock_bh)"
    source = "linux-mm, Hugh Dickins, 20 Jun 2023, [PATCH v2 07/12]"
    known: dict[str, str] = {}

    def __init__(self) -> None:
        self.mm_pgtable_list_lock = k.DEFINE_SPINLOCK("mm_pgtable_list_lock")

    def pgtable_lock(self, mm: k.MMStruct) -> k.SpinLock:
        return self.mm_pgtable_list_lock

    def pte_free_defer_check(self, page: k.Page, mm: k.MMStruct) -> k.Steps[None]:
        yield from ()  # v2 dropped the page->pt_mm warning here
