"""hugh-hh-bh: hugh-hh with Gerald Schaefer's spin_lock_bh fix for the other users.

Source:   linux-s390, Gerald Schaefer, 15 Jun 2023, "Re: [PATCH 07/12] s390:
          add pte_free_defer(), with use of mmdrop_async()", Message-ID
          <20230615141132.63ac6e67@thinkpad-T15>, his reply to Hugh Dickins'
          HH-bit rework, which Hugh quotes the same day (seed thread):
          __tlb_flush_mm_lazy and gmap take mm->context.lock with spin_lock_bh.
Audit:    hugh-hh (designs/hugh_hh.py, with its differences and the posted
          pte_free_half slip) plus the diff: __tlb_flush_mm_lazy takes and
          releases mm->context.lock with spin_lock_bh/spin_unlock_bh. The
          diff's gmap_create and gmap_remove hunks are not modelled: the model
          has no gmap, and __tlb_flush_mm_lazy represents the other users.
Verdicts (expected):
  - deadlock: gone; no softirq can start on a CPU that holds the lock, since
    every holder has bh disabled;
  - lockdep: gone; the lock is never taken with softirqs enabled;
  - use-after-free: remains; the unstable mm of hugh-hh does not depend on
    the flavour of the lock: __tlb_remove_table still locks page->pt_mm
    after the mm it saw alive may have exited and been freed;
  - leak: remains; hugh-hh's pte_free_half (posted without `mask >>= 24`)
    never queues the second deferred half of a page.
"""

from __future__ import annotations

from designs.hugh_hh import HughHH
from stateful.kernel import api as k


class HughHHBh(HughHH):
    name = "hugh-hh-bh"
    title = "hugh-hh, with spin_lock_bh for every user of mm->context.lock"
    source = "linux-s390, Gerald Schaefer, 15 Jun 2023, spin_lock_bh diff (seed thread)"
    known = {
        "use-after-free": "unstable mm: __tlb_remove_table locks page->pt_mm after the mm "
        "it saw alive has exited and been freed; the lock flavour does not help",
        "leak": "hugh-hh's pte_free_half, posted without `mask >>= 24`: when both halves "
        "were deferred, the second one's call_rcu is never made; table and page leak",
    }

    flush_lock = staticmethod(k.spin_lock_bh)
    flush_unlock = staticmethod(k.spin_unlock_bh)
