"""The kernel as design code sees it: `from stateful.kernel import api as k`.

Every name here is a generator: `yield from k.spin_lock_bh(lock)` is one
atomic step. Anything that touches shared state goes through one of these,
so the model sees it and can catch the misuse where it happens.
"""

from __future__ import annotations

from stateful.kernel import current
from stateful.kernel.cpu import Steps, local_bh_disable, local_bh_enable
from stateful.kernel.lists import (
    INIT_LIST_HEAD,
    ListHead,
    list_add,
    list_add_tail,
    list_del,
    list_del_init,
    list_empty,
    list_first_entry_or_null,
)
from stateful.kernel.locks import (
    DEFINE_SPINLOCK,
    SpinLock,
    spin_lock,
    spin_lock_bh,
    spin_lock_init,
    spin_unlock,
    spin_unlock_bh,
)
from stateful.kernel.memory import (
    Page,
    PageRcuHead,
    SetPageFlag,
    Table,
    Tagged,
    TestClearPageFlag,
    TestPageFlag,
    alloc_page,
    atomic_read,
    atomic_read_pt_frag_refcount,
    atomic_set_pt_frag_refcount,
    atomic_xor_bits,
    free_page,
    read_pt_mm,
    read_table,
    write_pt_mm,
)
from stateful.kernel.mm import (
    MMStruct,
    flush_mm_if_pending,
    mm_alloc_pgste,
    mm_has_pgste,
    mmdrop,
    mmdrop_async,
    mmgrab,
    read_mm_context,
    write_mm_context,
)
from stateful.kernel.mmu_gather import MmuGather, tlb_remove_table
from stateful.kernel.rcu import Callback, call_rcu, rcu_read_lock, rcu_read_unlock, synchronize_rcu
from stateful.kernel.slab import (
    KmemCache,
    SlabObject,
    kmem_cache_alloc,
    kmem_cache_create,
    kmem_cache_free,
)
from stateful.violations import BadBits


def WARN_ON_ONCE(condition: bool, what: str) -> Steps[bool]:  # noqa: N802 - the kernel's name
    """A design's own sanity check; firing is a bad-bits report."""
    w = current.world()
    if condition:
        w.report(BadBits, f"WARNING: CPU: {current.context().cpu.id} at {what}")
    yield None
    return condition


def BUG_ON(condition: bool, what: str) -> Steps[bool]:  # noqa: N802 - the kernel's name
    """A design's own assertion; reported as bad-bits, worded as the oops.

    The kernel would kill the task there; the model records the report and
    goes on, as for a WARN, so that what follows can still be seen."""
    w = current.world()
    if condition:
        w.report(BadBits, f"kernel BUG at {what}! CPU: {current.context().cpu.id}")
    yield None
    return condition


def SetPageActive(page: Page) -> Steps[None]:  # noqa: N802
    yield from SetPageFlag(page, "Active")


def PageActive(page: Page) -> Steps[bool]:  # noqa: N802
    return (yield from TestPageFlag(page, "Active"))


def TestClearPageActive(page: Page) -> Steps[bool]:  # noqa: N802
    return (yield from TestClearPageFlag(page, "Active"))


def hook(name: str, *args: object) -> Steps[object]:
    """Call another hook of the running design, shown in the trace under its kernel name."""
    return (yield from current.world().hook(name, *args))


def table_of(page: Page, bit: int | None) -> Table:
    """The table at half `bit` of `page` (None: the whole 4K page)."""
    return Table(page, bit)


def tag_of(table: Table) -> int:
    return 0x03 if table.bit is None else 1 << table.bit


def tagged(page: Page, tag: int) -> Tagged:
    return Tagged(page, tag)


__all__ = [
    "BUG_ON",
    "Callback",
    "DEFINE_SPINLOCK",
    "INIT_LIST_HEAD",
    "KmemCache",
    "ListHead",
    "MMStruct",
    "MmuGather",
    "Page",
    "PageRcuHead",
    "PageActive",
    "SetPageActive",
    "SlabObject",
    "SpinLock",
    "Steps",
    "Table",
    "Tagged",
    "TestClearPageActive",
    "WARN_ON_ONCE",
    "alloc_page",
    "atomic_read",
    "atomic_read_pt_frag_refcount",
    "atomic_set_pt_frag_refcount",
    "atomic_xor_bits",
    "call_rcu",
    "flush_mm_if_pending",
    "free_page",
    "hook",
    "kmem_cache_alloc",
    "kmem_cache_create",
    "kmem_cache_free",
    "list_add",
    "list_add_tail",
    "list_del",
    "list_del_init",
    "list_empty",
    "list_first_entry_or_null",
    "local_bh_disable",
    "local_bh_enable",
    "mm_alloc_pgste",
    "mm_has_pgste",
    "mmdrop",
    "mmdrop_async",
    "mmgrab",
    "rcu_read_lock",
    "rcu_read_unlock",
    "read_mm_context",
    "read_pt_mm",
    "read_table",
    "spin_lock",
    "spin_lock_bh",
    "spin_lock_init",
    "spin_unlock",
    "spin_unlock_bh",
    "synchronize_rcu",
    "table_of",
    "tag_of",
    "tagged",
    "tlb_remove_table",
    "write_mm_context",
    "write_pt_mm",
]
