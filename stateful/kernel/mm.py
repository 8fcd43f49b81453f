"""mm_struct: its two counts, its mmap_lock, and its lifetime.

`mm_users` counts the tasks that run in the mm (each thread holds one, and
so does a remote user after mmget_not_zero): when the last `mmput` drops it
to 0, `__mmput` runs exit_mmap and then `mmdrop`. No task runs in an mm whose
mm_users is 0, so nothing can fault in it or unmap from it during its exit.
`mm_count` (`mmgrab`/`mmdrop`) holds the struct alive, not its page tables.
The final `mmdrop` runs `__mmdrop` -> `destroy_context` -> free, wherever it
happens; nothing waits for the `__tlb_remove_table` callbacks still queued
for the mm's tables. The freed struct is poisoned: a stale pointer to it,
whether its memory is free or already holds a new mm, is a use-after-free.

`mmap_lock` is an rw_semaphore. Downgrading or releasing its write side also
ends every per-VMA write lock of the mm (`vma_end_write_all`: `mm_lock_seq`
moves on, stateful/kernel/vma.py).
"""

from __future__ import annotations

from typing import Any

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Steps
from stateful.kernel.lists import ListHead
from stateful.kernel.locks import SpinLock
from stateful.kernel.memory import KObject
from stateful.kernel.rwsem import (
    RwSemaphore,
    down_read,
    down_write,
    downgrade_write,
    up_read,
    up_write,
)


@define(eq=False)
class MMContext:
    """The s390 `mm->context`."""

    lock: SpinLock
    pgtable_list: ListHead
    # mm_alloc_pgste(): every page table is a 4K one with PGSTEs. Set when
    # the mm is created (the vm.allocate_pgste sysctl, or an ELF with
    # PT_S390_PGSTE); it does not disable THP, so khugepaged collapses there.
    alloc_pgste: bool = False
    # mm_has_pgste(): s390_enable_sie() has run (KVM_CREATE_VM), which also
    # marks the VMAs VM_NOHUGEPAGE. Not modelled: KVM never starts, so this
    # stays False (README, "What the model takes as given").
    has_pgste: bool = False
    flush_mm: bool = False
    arch: dict[str, Any] = field(factory=dict)  # a design's own per-mm state


@define(eq=False, repr=False)
class MMStruct(KObject):
    context: MMContext = field(default=None)
    mmap_lock: RwSemaphore = field(default=None)
    # The pmd table's split ptlock (pmd_lock()): one pmd table is all a small
    # mm's page tables hang from, so one lock per mm.
    pmd_ptl: SpinLock = field(default=None)
    mm_users: int = 1
    mm_count: int = 1
    mm_lock_seq: int = 0  # the per-VMA locks' sequence (vma_end_write_all moves it on)
    tlb_flush_pending: int = 0  # mmu_gathers in flight on this mm
    # Tables unhooked by pte_free_tlb since the mm's TLB was last flushed:
    # the TLB may still walk them, so none may go to __tlb_remove_table yet.
    tlb_flush_owed: list[Any] = field(factory=list)
    exiting: bool = False
    exited: bool = False
    reused_by: str = ""  # the mm that mm_cachep handed this memory to next

    @classmethod
    def create(cls, name: str, pgste: bool) -> MMStruct:
        mm = cls(name=name)
        mm.context = MMContext(
            lock=SpinLock(f"&{name}->context.lock", "&mm->context.lock", container=mm),
            pgtable_list=ListHead(f"{name}->context.pgtable_list", container=mm),
            alloc_pgste=pgste,
        )
        mm.mmap_lock = RwSemaphore(f"&{name}->mmap_lock", "&mm->mmap_lock", container=mm)
        mm.pmd_ptl = SpinLock(f"pmd_lockptr({name})", "ptlock_ptr(ptdesc)", container=mm)
        return mm


def mm_alloc_pgste(mm: MMStruct) -> Steps[bool]:
    return (yield from _pgste_flag(mm, "mm_alloc_pgste", "alloc_pgste"))


def mm_has_pgste(mm: MMStruct) -> Steps[bool]:
    return (yield from _pgste_flag(mm, "mm_has_pgste", "has_pgste"))


def _pgste_flag(mm: MMStruct, fn: str, member: str) -> Steps[bool]:
    w = current.world()
    w.access(mm, f"{fn}({mm})")
    value: bool = getattr(mm.context, member)
    yield None
    return value


def mmgrab(mm: MMStruct) -> Steps[None]:
    w = current.world()
    w.access(mm, f"mmgrab({mm})")
    mm.mm_count += 1
    w.trace_step(f"mmgrab({mm}) mm_count={mm.mm_count}")
    yield None


def mmdrop(mm: MMStruct) -> Steps[None]:
    w = current.world()
    w.access(mm, f"mmdrop({mm})")
    mm.mm_count -= 1
    last = mm.mm_count == 0  # atomic_dec_and_test: the decision is part of the step
    w.trace_step(f"mmdrop({mm}) mm_count={mm.mm_count}")
    yield None
    if last:
        yield from w.hook("destroy_context", mm)
        yield from free_mm(mm)


def mmput(mm: MMStruct) -> Steps[bool]:
    """atomic_dec_and_test(&mm->mm_users): True for the last user, whose
    caller then runs __mmput (exit_mmap, then mmdrop)."""
    w = current.world()
    w.access(mm, f"mmput({mm})")
    mm.mm_users -= 1
    last = mm.mm_users == 0
    if last:
        mm.exiting = True
    w.trace_step(f"mmput({mm}) mm_users={mm.mm_users}")
    yield None
    return last


def mmap_read_lock(mm: MMStruct) -> Steps[None]:
    yield from down_read(mm.mmap_lock, f"mmap_read_lock({mm})")


def mmap_read_unlock(mm: MMStruct) -> Steps[None]:
    yield from up_read(mm.mmap_lock, f"mmap_read_unlock({mm})")


def mmap_write_lock(mm: MMStruct) -> Steps[None]:
    yield from down_write(mm.mmap_lock, f"mmap_write_lock({mm})")


def _vma_end_write_all(mm: MMStruct) -> None:
    """Every per-VMA write lock of mm ends at once: mm_lock_seq moves on."""
    mm.mm_lock_seq += 1


def mmap_write_unlock(mm: MMStruct) -> Steps[None]:
    _vma_end_write_all(mm)
    yield from up_write(mm.mmap_lock, f"mmap_write_unlock({mm})")


def mmap_write_downgrade(mm: MMStruct) -> Steps[None]:
    """The writer keeps the lock for read: faults and other readers come in."""
    _vma_end_write_all(mm)
    yield from downgrade_write(mm.mmap_lock, f"mmap_write_downgrade({mm})")


def flush_mm_if_pending(mm: MMStruct) -> Steps[None]:
    """The body of __tlb_flush_mm_lazy, under mm->context.lock: if a lazy TLB
    flush is pending, clear the flag and flush. The critical section is not
    empty, so an interrupt can land inside it."""
    w = current.world()
    w.access(mm, f"READ {mm}->context.flush_mm")
    pending = mm.context.flush_mm
    w.trace_step(f"{mm}->context.flush_mm -> {int(pending)}")
    yield None
    if pending:
        mm.context.flush_mm = False
        mm.tlb_flush_owed.clear()
        w.trace_step(f"__tlb_flush_mm({mm})")
        yield None


def read_mm_context(mm: MMStruct, member: str) -> Steps[Any]:
    """READ mm->context.<member>: a word a design adds to the s390 mm context
    (kept in `mm.context.arch`; NULL until written)."""
    w = current.world()
    w.access(mm, f"READ {mm}->context.{member}")
    value = mm.context.arch.get(member)
    w.trace_step(f"{mm}->context.{member} -> {'NULL' if value is None else repr(value)}")
    yield None
    return value


def write_mm_context(mm: MMStruct, member: str, value: Any) -> Steps[None]:
    """WRITE mm->context.<member> = value (None is NULL)."""
    w = current.world()
    w.access(mm, f"WRITE {mm}->context.{member}")
    mm.context.arch[member] = value
    w.trace_step(f"{mm}->context.{member} = {'NULL' if value is None else repr(value)}")
    yield None


def free_mm(mm: MMStruct) -> Steps[None]:
    """The end of __mmdrop: the struct goes back to mm_cachep."""
    w = current.world()
    w.access(mm, f"__mmdrop({mm})")
    mm.freed = True
    mm.freed_where = f"{current.context()!r} in __mmdrop at step {w.steps}"
    w.mm_cachep_free.append(mm)
    w.trace_step(f"__mmdrop({mm}): free_mm")
    yield None


# mmdrop_async() defers __mmdrop to a workqueue; the struct's lifetime is the
# same as far as the page-table code can tell, so it is modelled as mmdrop.
mmdrop_async = mmdrop
