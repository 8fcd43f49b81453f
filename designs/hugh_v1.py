"""hugh-v1: pte_free_defer as first posted: mmgrab + call_rcu + mmdrop_async.

Source:   linux-mm, Hugh Dickins, 29 May 2023, "[PATCH 07/12] s390: add
          pte_free_defer(), with use of mmdrop_async()" (v1).
Rule:     upstream-6.4 unchanged, plus pte_free_defer: mmgrab(mm), store the
          mm with the half in its low bits in page->pt_mm, and
          call_rcu(&page->rcu_head, pte_free_now); the callback decodes them,
          runs page_table_free(mm, table) in softirq, then mmdrop_async(mm).
          Nothing looks at pgtable_list or at whether rcu_head is in use.
Verdicts (expected):
  - list-corruption: call_rcu on a page that is on pgtable_list (its other
    half free) overwrites page->lru, which is page->rcu_head;
  - rcu-head-reuse: both halves deferred within one grace period queue the
    same page->rcu_head twice;
  - lockdep: page_table_free now takes mm->context.lock in softirq, while
    tlb_flush_mm_lazy takes it with plain spin_lock, softirqs enabled;
  - deadlock: that softirq spins on the lock tlb_flush_mm_lazy holds on the
    same CPU.
          Beyond the default run (met by its random survey once in 6,000
          runs under other draws, so not in `known`; replays/beyond-known/):
  - double-alloc, bad-bits: the second half's pte_free_defer rewrites
    page->pt_mm while the first half's callback is due; a softirq that runs
    it in between, before the second call_rcu, frees the wrong half, which
    is handed out again and freed again by the second callback.
Audit:    matches the posted C. pte_free_defer: mmgrab(mm); page->pt_mm =
          mm + half; call_rcu(&page->rcu_head, pte_free_now). pte_free_now:
          decode page->pt_mm, page_table_free(mm, table), mmdrop_async(mm).
          The rest is upstream-6.4, with that module's differences (see its
          header). mmdrop_async is modelled as mmdrop: it moves the final
          __mmdrop to a workqueue, and the model's free at once is one of the
          schedules that workqueue allows.
Choice:   a PGSTE table is encoded as half 0, which page_table_free's PGSTE
          path ignores (the model stores no half for it: same steps).
"""

from __future__ import annotations

from attrs import frozen

from designs.upstream_6_4 import Upstream64
from stateful.kernel import api as k


@frozen
class MmWithHalf:
    """page->pt_mm as v1 stores it: the mm pointer with the half number in its low bits."""

    mm: k.MMStruct
    bit: int | None

    def __repr__(self) -> str:
        return f"{self.mm}|{self.bit or 0}"


class HughV1(Upstream64):
    name = "hugh-v1"
    title = "upstream-6.4 + pte_free_defer: mmgrab, call_rcu, mmdrop_async"
    source = "linux-mm, Hugh Dickins, 29 May 2023, [PATCH 07/12] v1"
    known = {
        "list-corruption": "call_rcu on a page still on pgtable_list clobbers page->lru",
        "rcu-head-reuse": "both halves deferred in one grace period queue page->rcu_head twice",
        "lockdep": "pte_free_now takes mm->context.lock in softirq; tlb_flush_mm_lazy "
        "takes it with softirqs enabled",
        "deadlock": "softirq pte_free_now spins on mm->context.lock held by "
        "tlb_flush_mm_lazy's plain spin_lock on the same CPU",
    }
    supports_defer = True

    def pte_free_defer(self, mm: k.MMStruct, table: k.Table) -> k.Steps[None]:
        page = table.page
        yield from k.mmgrab(mm)
        yield from k.write_pt_mm(page, MmWithHalf(mm, table.bit))
        yield from k.call_rcu(page.rcu_head, self.pte_free_now)

    def pte_free_now(self, head: k.PageRcuHead) -> k.Steps[None]:
        page = head.page
        encoded = yield from k.read_pt_mm(page)
        mm = encoded.mm
        yield from k.hook("page_table_free", mm, k.table_of(page, encoded.bit))
        yield from k.mmdrop_async(mm)
