"""One exception class per property of the contract.

Each is raised at the step where the violation happens, worded like the
kernel checker it mirrors, so that the last line of a race diagram reads
like the splat a developer would see in dmesg. Where the kernel has no
checker that would see it there (a freed page's struct page written, a
page-table page leaked, a design's own impossible bits), the message says
what happened and that the kernel reports nothing at that point.
"""

from __future__ import annotations

from typing import ClassVar


class Violation(Exception):
    """A property of the contract was violated."""

    property: ClassVar[str] = ""
    checker: ClassVar[str] = ""
    # A warning-class report lets the kernel carry on (WARN_ON_ONCE, lockdep);
    # the others leave the model in a state nothing later can be trusted on.
    warning: ClassVar[bool] = False


class DoubleAlloc(Violation):
    property = "double-alloc"
    checker = "page table ownership"


class DoubleFree(Violation):
    property = "double-free"
    checker = "KASAN"


class UseAfterFree(Violation):
    """A freed page, mm or lock read or written; or a page table freed while
    the TLB may still walk it (its mm's flush still owed: no kernel checker
    sees that one, a stale TLB entry does)."""

    property = "use-after-free"
    checker = "KASAN"


class ListCorruption(Violation):
    property = "list-corruption"
    checker = "CONFIG_DEBUG_LIST"


class RcuHeadReuse(Violation):
    property = "rcu-head-reuse"
    checker = "debug-objects"


class BadBits(Violation):
    """Page state the design's own rule calls impossible (its WARN_ON_ONCEs,
    an impossible _refcount byte), or that the page allocator rejects: a page
    freed with a flag of PAGE_FLAGS_CHECK_AT_FREE set ("Bad page state")."""

    property = "bad-bits"
    checker = "WARN_ON_ONCE"
    warning = True


class Deadlock(Violation):
    property = "deadlock"
    checker = "RCU stall / hard lockup"


class Lockdep(Violation):
    property = "lockdep"
    checker = "lockdep"
    warning = True


class EarlyReuse(Violation):
    property = "early-reuse"
    checker = "pte_free_defer guarantee"


class Leak(Violation):
    property = "leak"
    checker = "the drain's leak check (kmemleak, for an mm_struct)"


VIOLATIONS: tuple[type[Violation], ...] = (
    DoubleAlloc,
    DoubleFree,
    UseAfterFree,
    ListCorruption,
    RcuHeadReuse,
    BadBits,
    Deadlock,
    Lockdep,
    EarlyReuse,
    Leak,
)

PROPERTIES: dict[str, type[Violation]] = {cls.property: cls for cls in VIOLATIONS}
