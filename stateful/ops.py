"""The task-context operations the state machine starts, as kernel code runs them.

Each is a generator over the design's hooks inside the locks and references
its caller in mm/ holds, so that what may overlap follows from the kernel's
own exclusion (stateful/kernel/rwsem.py, mm.py, vma.py, file.py), not from
a list of bans:

  page fault      a thread of the mm; the VMA's per-VMA read lock, or mmap_lock
                  for read when that is refused; __pte_alloc or a THP's deposit.
                  Two faults on one pmd both allocate; pmd_install (or the THP
                  fault's own check) lets the first in, and the other pte_frees
                  its table with no spinlock held
  MADV_DONTNEED   a thread; mmap_lock for read; zap_huge_pmd frees the THP's
                  deposited table with pte_free, under the pmd lock
  munmap          a thread; mmap_lock for write to detach the range (its VMA
                  write-locked, a file VMA split under i_mmap_rwsem), then for
                  read only: unmap_region unlinks the detached VMA, frees the
                  table with pte_free_tlb, and flushes in tlb_finish_mmu
  lockless walk   a thread; the per-VMA read lock (or mmap_lock), and inside
                  it rcu_read_lock(), as a pte_offset_map() walker has
  switch_mm       a thread; __tlb_flush_mm_lazy only
  khugepaged      retract_page_tables: the file's i_mmap_rwsem for read, and
                  nothing else: no mmap_lock, no reference on the mm, a racy
                  test of mm_users
  exit            the last mmput: exit_mmap unmaps under mmap_lock for read,
                  then frees the page tables under mmap_lock for write, VMA by
                  VMA in address order, each file VMA unlinked (i_mmap_rwsem
                  for write) before the tables under it are freed

A thread's operation holds the thread's own reference on mm_users while it
runs (taken when the thread was cloned: not a step of the operation), so an
mm reaches exit_mmap only when none is in flight; khugepaged holds none.
Every mm maps two VMAs, in address order: anonymous memory, then a file of
its own (`FILE`), whose tables are the ones khugepaged can retract.
`PageTables` is what the page-table tree of each mm holds: the VMA whose
range each table maps, and what is in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from attrs import define, field

from stateful.kernel import api as k
from stateful.kernel.file import (
    AddressSpace,
    i_mmap_lock_read,
    i_mmap_lock_write,
    i_mmap_unlock_read,
    i_mmap_unlock_write,
)
from stateful.kernel.locks import spin_lock, spin_unlock
from stateful.kernel.memory import Table
from stateful.kernel.mm import (
    MMStruct,
    mmap_read_lock,
    mmap_read_unlock,
    mmap_write_downgrade,
    mmap_write_lock,
    mmap_write_unlock,
    mmput,
)
from stateful.kernel.mmu_gather import MmuGather, pte_free_tlb, tlb_finish_mmu, tlb_gather_mmu
from stateful.kernel.vma import (
    VmArea,
    lock_vma_under_rcu,
    unlink_file_vma,
    vm_area_free,
    vma_end_read,
    vma_start_write,
)
from stateful.kernel.world import World

T = TypeVar("T")

ANON, FILE = 0, 1  # an mm's VMAs, in address order: the heap below the file mapping


@define(eq=False)
class Pmd:
    """A pmd that a fault found none in (pte_alloc's pmd_none): every fault
    on it allocates a table, and the first to take the pmd lock installs its own."""

    vma: VmArea
    thp: bool  # a THP fault in anonymous memory: the winner deposits its table
    populated: bool = False


@define
class PageTables:
    """Per mm: its VMAs and the tables under them, and what is in flight."""

    vmas: dict[MMStruct, list[VmArea]] = field(factory=dict)  # live mms, VMAs in address order
    installed: dict[Table, VmArea] = field(factory=dict)  # in a pmd, under this VMA's range
    deposited: dict[Table, VmArea] = field(factory=dict)  # a THP's table, not in any pmd
    unmapping: set[Table] = field(factory=set)  # a munmap (or zap) of its range is in flight
    retracting: set[Table] = field(factory=set)  # a retract_page_tables is after it
    # pmds a fault in flight found none in and has not populated yet, most
    # recent first: another fault on the same addresses may race it there.
    populating: list[Pmd] = field(factory=list)
    # Most recently used first: the machine's picks count from the front, so
    # the simplest pick (0) is the object last touched, as in real workloads
    # where one task keeps working on its own mm and its newest tables.
    recent: list[MMStruct | Table] = field(factory=list)

    def touch(self, *objs: MMStruct | Table) -> None:
        for obj in objs:
            if obj in self.recent:
                self.recent.remove(obj)
            self.recent.insert(0, obj)

    def alive(self) -> list[MMStruct]:
        """mms not yet torn down, exiting ones too."""
        return [o for o in self.recent if isinstance(o, MMStruct) and o in self.vmas]

    def mms(self) -> list[MMStruct]:
        """mms a task runs in: the only ones a thread's operation can act on."""
        return [mm for mm in self.alive() if mm.mm_users > 0]

    def exitable(self) -> list[MMStruct]:
        """mms whose last user can go: no thread of theirs is in an operation."""
        return [mm for mm in self.alive() if mm.mm_users == 1]

    def fault_vmas(self, mm: MMStruct) -> list[VmArea]:
        """Where a fault may land: the file mapping first, the VMA every
        pte_free_defer needs."""
        vmas = self.vmas[mm]
        return [vmas[FILE], vmas[ANON]]

    def _recent(self, pool: Iterable[Table]) -> list[Table]:
        wanted = set(pool)
        return [o for o in self.recent if isinstance(o, Table) and o in wanted]

    def tables(self) -> list[tuple[MMStruct, Table]]:
        """Tables a thread can reach by address: in a pmd, under a VMA still mapped."""
        users = set(self.mms())
        return [
            (v.mm, t)
            for t in self._recent(self.installed)
            if not (v := self.installed[t]).detached and v.mm in users
        ]

    def munmappable(self) -> list[tuple[MMStruct, Table]]:
        return [(mm, t) for mm, t in self.tables() if t not in self.unmapping]

    def collapsible_tables(self) -> list[tuple[MMStruct, Table]]:
        """Tables khugepaged may retract: under a file VMA that the file's
        i_mmap tree still holds, of an mm that passes its racy exit test.
        An mm that allocates PGSTE tables is no exception: only KVM's
        s390_enable_sie disables THP, and retract_page_tables does not look
        at the VMA's flags anyway (see README)."""
        out = []
        for t in self._recent(self.installed):
            vma = self.installed[t]
            mm = vma.mm
            if (
                vma.file is not None
                and vma in vma.file.i_mmap
                and mm.mm_users > 0
                and t not in self.retracting
            ):
                out.append((mm, t))
        return out

    def deposits(self) -> list[tuple[MMStruct, Table]]:
        """THPs' tables a thread may zap (none being zapped already)."""
        users = set(self.mms())
        return [
            (v.mm, t)
            for t in self._recent(self.deposited)
            if (v := self.deposited[t]).mm in users and t not in self.unmapping
        ]

    def count(self) -> int:
        return len(self.installed) + len(self.deposited)


def _step(w: World, mm: MMStruct, text: str) -> k.Steps[None]:
    """One step that touches mm's page tables (a pmd) and nothing else the model sees."""
    w.access(mm, text)
    w.trace_step(text)
    yield None


def _thread(mm: MMStruct, body: k.Steps[T]) -> k.Steps[T]:
    """body, run by a thread of mm: it holds its reference on mm_users meanwhile."""
    if mm.mm_users == 0:
        raise RuntimeError(f"no task runs in {mm}: its mm_users is 0 (it is exiting)")
    mm.mm_users += 1
    try:
        return (yield from body)
    finally:
        mm.mm_users -= 1


def _take(w: World, pt: PageTables, table: Table) -> None:
    """The table leaves its pmd (or the THP's deposit): its owner gives it up."""
    pt.installed.pop(table, None)
    pt.deposited.pop(table, None)
    pt.unmapping.discard(table)
    pt.retracting.discard(table)
    if table in pt.recent:
        pt.recent.remove(table)
    w.release_table(table)


def mm_create(w: World, pt: PageTables, name: str, pgste: bool) -> k.Steps[MMStruct]:
    """fork/exec: a new mm, with its anonymous memory and a file mapped."""
    mm = w.mm_alloc(name, pgste)
    yield from w.hook("init_context", mm)
    # The file is the mm's own, so nobody else can hold its i_mmap_rwsem yet:
    # linking the VMA under i_mmap_lock_write cannot wait, and is not a step.
    mapping = AddressSpace.create(f"f{name.removeprefix('mm')}")
    vmas = [VmArea.create(f"{mm}:anon", mm, None), VmArea.create(f"{mm}:{mapping}", mm, mapping)]
    pt.vmas[mm] = vmas  # only now can anything else use it
    pt.touch(mm)
    return mm


# --- page faults -------------------------------------------------------------


def _lock_vma(mm: MMStruct, vma: VmArea) -> k.Steps[bool]:
    """lock_vma_under_rcu, or mmap_read_lock when refused. True: per-VMA."""
    if (yield from lock_vma_under_rcu(vma)):
        return True
    yield from mmap_read_lock(mm)  # lock_mm_and_find_vma: only exit removes the VMA
    return False


def _unlock_vma(mm: MMStruct, vma: VmArea, per_vma: bool) -> k.Steps[None]:
    if per_vma:
        yield from vma_end_read(vma)
    else:
        yield from mmap_read_unlock(mm)


def alloc(
    w: World,
    pt: PageTables,
    mm: MMStruct,
    vma: VmArea | None = None,
    thp: bool = False,
    pmd: Pmd | None = None,
) -> k.Steps[Table | None]:
    """A page fault in vma (the file mapping unless told): __pte_alloc, or
    with thp in anonymous memory, the THP's table for pgtable_trans_huge_deposit.
    With pmd, a fault on the pmd another fault in flight is populating: its
    VMA and kind are the pmd's. It returns the table it installed, or None."""
    if pmd is not None:
        vma = pmd.vma
    where = vma if vma is not None else pt.vmas[mm][FILE]
    return (yield from _thread(mm, _fault(w, pt, mm, where, thp, pmd)))


def _fault(
    w: World, pt: PageTables, mm: MMStruct, vma: VmArea, thp: bool, pmd: Pmd | None
) -> k.Steps[Table | None]:
    pt.touch(mm)
    per_vma = yield from _lock_vma(mm, vma)
    if pmd is None:
        pmd = Pmd(vma, thp and vma.file is None)
        pt.populating.insert(0, pmd)
    installed = None
    if not pmd.populated:  # pte_alloc: only a pmd still none needs a table
        table = yield from w.hook("page_table_alloc", mm)
        w.claim_table(table, f"{mm}")
        if (yield from _install(w, pt, mm, pmd, table)):
            installed = table
    yield from _unlock_vma(mm, vma, per_vma)
    return installed


def _install(w: World, pt: PageTables, mm: MMStruct, pmd: Pmd, table: Table) -> k.Steps[bool]:
    """Under the pmd lock (one step: it holds nothing else), the pmd is
    tested and, if still none, populated: with the table (pmd_install), or
    with the huge pmd, the table deposited. A fault that finds it populated
    frees its table once the lock is dropped: pte_free, with no spinlock held."""
    if not pmd.populated:
        pmd.populated = True
        pt.populating.remove(pmd)
        if pmd.thp:
            pt.deposited[table] = pmd.vma
            yield from _step(w, mm, f"pgtable_trans_huge_deposit({mm}, {table})")
        else:
            pt.installed[table] = pmd.vma
            yield from _step(w, mm, f"pmd_populate({mm}, {table})")
        pt.touch(table, mm)
        return True
    yield from _step(w, mm, f"pmd_install({mm}, {table}): populated already")
    w.release_table(table)
    yield from w.hook("page_table_free", mm, table)
    return False


def reader(w: World, pt: PageTables, mm: MMStruct, table: Table) -> k.Steps[None]:
    """A pte_offset_map() walker (a fault, madvise, ...): under its VMA's read
    lock, rcu_read_lock(), read the ptes if the pmd still points to the table."""
    vma = pt.installed[table]
    yield from _thread(mm, _walk(w, pt, mm, vma, table))


def _walk(w: World, pt: PageTables, mm: MMStruct, vma: VmArea, table: Table) -> k.Steps[None]:
    pt.touch(mm, table)
    per_vma = yield from _lock_vma(mm, vma)
    yield from k.rcu_read_lock()
    if pt.installed.get(table) is vma:
        yield from k.read_table(table)
    yield from k.rcu_read_unlock()
    yield from _unlock_vma(mm, vma, per_vma)


def flush(w: World, pt: PageTables, mm: MMStruct) -> k.Steps[None]:
    """finish_arch_post_lock_switch -> __tlb_flush_mm_lazy at a context switch."""
    pt.touch(mm)
    yield from _thread(mm, w.hook("tlb_flush_mm_lazy", mm))


# --- freeing page tables -------------------------------------------------------


def _zap_huge_pmd(w: World, pt: PageTables, tlb: MmuGather, table: Table) -> k.Steps[None]:
    """zap_huge_pmd: under the pmd lock, if the pmd still holds the THP, it is
    cleared and zap_deposited_table frees the THP's table with pte_free."""
    mm = tlb.mm
    yield from spin_lock(mm.pmd_ptl)
    if table in pt.deposited or table in pt.installed:  # __pmd_trans_huge_lock
        tlb.cleared_pmds = True  # tlb_remove_pmd_tlb_entry
        _take(w, pt, table)
        yield from _step(w, mm, f"pgtable_trans_huge_withdraw({mm}) -> {table}")
        yield from w.hook("page_table_free", mm, table)
    yield from spin_unlock(mm.pmd_ptl)


def free(w: World, pt: PageTables, mm: MMStruct, table: Table) -> k.Steps[None]:
    """MADV_DONTNEED of a THP: pte_free of its deposited table."""
    pt.unmapping.add(table)
    yield from _thread(mm, _madvise_dontneed(w, pt, mm, table))


def _madvise_dontneed(w: World, pt: PageTables, mm: MMStruct, table: Table) -> k.Steps[None]:
    pt.touch(mm)
    yield from mmap_read_lock(mm)
    tlb = tlb_gather_mmu(mm)
    yield from _zap_huge_pmd(w, pt, tlb, table)
    pt.unmapping.discard(table)
    yield from tlb_finish_mmu(tlb)
    yield from mmap_read_unlock(mm)


def free_tlb(
    w: World, pt: PageTables, mm: MMStruct, table: Table, batch_alloc_fails: bool
) -> k.Steps[None]:
    """munmap of the range the table maps."""
    vma = pt.installed[table]
    pt.unmapping.add(table)
    yield from _thread(mm, _munmap(w, pt, mm, vma, table, batch_alloc_fails))


def _munmap(
    w: World, pt: PageTables, mm: MMStruct, vma: VmArea, table: Table, batch_alloc_fails: bool
) -> k.Steps[None]:
    pt.touch(mm)
    # do_vmi_align_munmap: under mmap_lock for write, the range is split off
    # its VMA and detached from the mm's tree; faults on it find nothing.
    yield from mmap_write_lock(mm)
    yield from vma_start_write(vma)
    name = f"{vma}[{table}]"
    if vma.file is not None:
        mapping = vma.file

        def split() -> k.Steps[VmArea]:
            yield from i_mmap_lock_write(mapping)
            piece = vma.split(name)
            yield from i_mmap_unlock_write(mapping)
            return piece

        detached = yield from w.traced(f"__split_vma({vma})", split())
    else:
        detached = vma.split(name)  # the anon_vma's lock is not modelled
    detached.detached = True
    if pt.installed.get(table) is vma:
        pt.installed[table] = detached
    # Point of no return: the page tables are freed under mmap_lock for read.
    yield from mmap_write_downgrade(mm)
    body = _unmap_region(w, pt, mm, detached, table, batch_alloc_fails)
    yield from w.traced(f"unmap_region({mm})", body)
    vm_area_free(detached)
    yield from mmap_read_unlock(mm)


def _unmap_region(
    w: World, pt: PageTables, mm: MMStruct, vma: VmArea, table: Table, batch_alloc_fails: bool
) -> k.Steps[None]:
    tlb = tlb_gather_mmu(mm, batch_alloc_fails)
    # unmap_vmas zaps the ptes of the range: a flush is owed for them.
    tlb.cleared_ptes = pt.installed.get(table) is vma
    # free_pgtables: unlink the VMA, then free what is still in its pmd
    # (khugepaged may have retracted the table meanwhile).
    yield from unlink_file_vma(vma)
    pt.unmapping.discard(table)
    if pt.installed.get(table) is vma:
        _take(w, pt, table)
        yield from pte_free_tlb(tlb, table)
    yield from tlb_finish_mmu(tlb)


def defer(w: World, pt: PageTables, mm: MMStruct, table: Table) -> k.Steps[None]:
    """khugepaged's retract_page_tables on the file the table maps."""
    mapping = pt.installed[table].file
    if mapping is None:
        raise RuntimeError(f"{table} is under anonymous memory: khugepaged cannot retract it")
    pt.retracting.add(table)
    pt.touch(mm)
    yield from w.traced(f"retract_page_tables({mapping})", _retract(w, pt, mm, mapping, table))


def _retract(
    w: World, pt: PageTables, mm: MMStruct, mapping: AddressSpace, table: Table
) -> k.Steps[None]:
    yield from i_mmap_lock_read(mapping)
    # vma_interval_tree_foreach finds the VMA over the table's range while it
    # is linked; find_pmd_or_thp_or_none finds the table while it is in the pmd.
    vma = pt.installed.get(table)
    if vma is not None and vma in mapping.i_mmap:
        # hpage_collapse_test_exit: racy, and with no reference on mm; the mm
        # cannot be freed meanwhile, as its VMA is still in the tree.
        w.access(mm, f"atomic_read(&{mm}->mm_users)")
        exiting = mm.mm_users == 0
        w.trace_step(f"hpage_collapse_test_exit({mm}) -> {int(exiting)}")
        yield None
        if not exiting and pt.installed.get(table) is vma:
            _take(w, pt, table)
            yield from _step(w, mm, f"pmdp_collapse_flush({mm}, {table})")
            w.defer_table(table)
            yield from w.hook("pte_free_defer", mm, table)
    pt.retracting.discard(table)
    yield from i_mmap_unlock_read(mapping)


# --- exit --------------------------------------------------------------------


def exit_mm(w: World, pt: PageTables, mm: MMStruct, batch_alloc_fails: bool) -> k.Steps[None]:
    """The last thread goes: mmput, then __mmput's exit_mmap and mmdrop."""
    if not (yield from mmput(mm)):
        raise RuntimeError(f"{mm} still has users: its exit is not the last mmput")
    # Shown as one call, so a race diagram says which frees are the exit.
    yield from w.traced(f"exit_mmap({mm})", _exit_mmap(w, pt, mm, batch_alloc_fails))
    del pt.vmas[mm]
    pt.recent.remove(mm)
    mm.exited = True
    yield from k.mmdrop(mm)


def _exit_mmap(w: World, pt: PageTables, mm: MMStruct, batch_alloc_fails: bool) -> k.Steps[None]:
    vmas = pt.vmas[mm]
    yield from mmap_read_lock(mm)
    tlb = tlb_gather_mmu(mm, batch_alloc_fails)  # fullmm
    # unmap_vmas: every pte is zapped; a THP's deposited table goes with it.
    tlb.cleared_ptes = any(v in vmas for v in pt.installed.values())
    for vma in vmas:
        for table in [t for t, v in pt.deposited.items() if v is vma]:
            yield from _zap_huge_pmd(w, pt, tlb, table)
    yield from mmap_read_unlock(mm)
    yield from mmap_write_lock(mm)
    # free_pgtables: VMA by VMA in address order, unlinked, then its tables
    # freed. A file VMA's unlink waits for a retract_page_tables that holds
    # the file's i_mmap_rwsem; the tables of the VMAs before it are freed by then.
    for vma in vmas:
        yield from unlink_file_vma(vma)
        for table in [t for t, v in pt.installed.items() if v is vma]:
            _take(w, pt, table)
            yield from pte_free_tlb(tlb, table)
    yield from tlb_finish_mmu(tlb)
    for vma in vmas:
        vm_area_free(vma)
    yield from mmap_write_unlock(mm)
