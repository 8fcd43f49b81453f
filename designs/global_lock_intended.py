"""global-lock-intended: [PATCH v2 07/12] with pte_free_half's test as its comment means it.

Source:   global-lock (designs/global_lock.py), Hugh Dickins' [PATCH v2 07/12]
          of 20 Jun 2023, Message-ID <a722dbec-bd9e-1213-1edd-53cd547aa4f@google.com>.
Differences from the posted C (one line, in pte_free_half):
  - `mask >>= 24;` added after `mask = atomic_xor_bits(&page->_refcount,
    0x04U << (bit + 24));`, as every other atomic_xor_bits whose result
    the patch tests has it. The posted `if (mask & 0x0CU)` then tests the
    HH bits, as its comment says ("If pte_free_defer() of the other half
    came in, queue it now"), instead of the low bits of _refcount (the
    page's own count, 1). Our own HH bit was just cleared, so what it sees
    is the other half's.
  Everything else is global-lock's, line for line. This is not a posted
  design: it answers whether v2 is otherwise sound once that slip is fixed.
Verdicts: every property held, the leak of global-lock included: the
  default run (`pytest tests/test_verdicts.py --design global-lock-intended`:
  the exhaustive first pass, then 6,000 examples x 40 steps of the random
  scheduler, derandomized: 6,000 runs, every one drained clean, at kernel
  model 5) and 3 fresh seeds of the same survey (`python
  benchmarks/find_speed.py --survey --design global-lock-intended --runs 3`)
  found nothing. So, within
  what the random search reaches, the missing shift is v2's only flaw the
  machine sees. The c2c224932fd0 question (its page_table_free has no
  temporary PP): the exhaustive mode finds nothing at the default bound,
  nor with one more on S, on C or on P, each raised alone (README, "The
  default bound has no margin"): the search that finds pre-c2c-5.16's
  race at the default bound.
"""

from __future__ import annotations

from designs.base import HH
from designs.global_lock import GlobalLock
from stateful.kernel import api as k


class GlobalLockIntended(GlobalLock):
    name = "global-lock-intended"
    title = "global-lock with `mask >>= 24` in pte_free_half (not posted)"
    source = "[PATCH v2 07/12] (20 Jun 2023) with pte_free_half's missing shift added"
    known: dict[str, str] = {}

    def pte_free_half(self, head: k.PageRcuHead, bit: int) -> k.Steps[None]:
        page = head.page
        mask = yield from k.atomic_xor_bits(page, HH << (bit + 24))
        mask >>= 24  # the one line that is not in the posted C
        yield from k.hook("tlb_remove_table", k.tagged(page, 1 << bit))
        if mask & 0x0C:
            # pte_free_defer() of the other half came in while our rcu_head
            # was queued, and left its own call_rcu to us.
            yield from k.call_rcu(page.rcu_head, self.pte_free_now[bit ^ 1])
