"""The task-context operations the state machine starts, as kernel code runs them.

Each is a generator over the design's hooks, wrapped the way its caller in
mm/ wraps it: munmap frees through the mmu_gather, khugepaged retracts with
pte_free_defer, exit_mmap frees every table of the mm and drops the mm.
`PageTables` is what the page-table tree of each mm holds: the tables the
operations may pick, and what is in flight on each mm.
"""

from __future__ import annotations

from collections import Counter

from attrs import define, field

from stateful.kernel import api as k
from stateful.kernel.memory import Table
from stateful.kernel.mm import MMStruct
from stateful.kernel.mmu_gather import tlb_finish_mmu, tlb_gather_mmu
from stateful.kernel.world import World


@define
class PageTables:
    """Per mm: the tables installed in its pmds, and who is using the mm."""

    live: dict[MMStruct, list[Table]] = field(factory=dict)
    busy: Counter[MMStruct] = field(factory=Counter)  # task-context ops in flight
    walked: Counter[MMStruct] = field(factory=Counter)  # RCU readers inside its tables
    walking: Counter[Table] = field(factory=Counter)
    # Most recently used first: the machine's picks count from the front, so
    # the simplest pick (0) is the object last touched, as in real workloads
    # where one task keeps working on its own mm and its newest tables.
    recent: list[MMStruct | Table] = field(factory=list)

    def touch(self, *objs: MMStruct | Table) -> None:
        for obj in objs:
            if obj in self.recent:
                self.recent.remove(obj)
            self.recent.insert(0, obj)

    def mms(self) -> list[MMStruct]:
        """mms a new operation may use: alive and not exiting."""
        return [
            o for o in self.recent if isinstance(o, MMStruct) and o in self.live and not o.exiting
        ]

    def tables(self) -> list[tuple[MMStruct, Table]]:
        owner = {t: mm for mm in self.mms() for t in self.live[mm]}
        return [(owner[o], o) for o in self.recent if isinstance(o, Table) and o in owner]

    def exitable(self) -> list[MMStruct]:
        """mms that may exit now: no task operation of theirs and no RCU walk
        of their tables is in flight (the task doing it holds the mm)."""
        return [mm for mm in self.mms() if not self.busy[mm] and not self.walked[mm]]

    def collapsible_tables(self) -> list[tuple[MMStruct, Table]]:
        """Tables khugepaged may retract: s390 disables THP in mms with PGSTEs
        (KVM guests), so pte_free_defer never sees their tables."""
        return [(mm, t) for mm, t in self.tables() if not mm.context.has_pgste]

    def unwalked_tables(self) -> list[tuple[MMStruct, Table]]:
        """Tables no RCU reader is inside: only pte_free_defer may free a walked one."""
        return [(mm, t) for mm, t in self.tables() if not self.walking[t]]


def mm_create(w: World, pt: PageTables, name: str, pgste: bool) -> k.Steps[MMStruct]:
    mm = w.mm_alloc(name, pgste)
    yield from w.hook("init_context", mm)
    pt.live[mm] = []  # only now can anything else use it
    pt.touch(mm)
    return mm


def alloc(w: World, pt: PageTables, mm: MMStruct) -> k.Steps[Table]:
    pt.touch(mm)
    pt.busy[mm] += 1
    table = yield from w.hook("page_table_alloc", mm)
    w.claim_table(table, f"{mm}")
    pt.live[mm].append(table)
    pt.touch(table, mm)
    pt.busy[mm] -= 1
    return table


def _take(w: World, pt: PageTables, mm: MMStruct, table: Table) -> None:
    pt.touch(mm)
    pt.recent.remove(table)
    pt.live[mm].remove(table)
    w.release_table(table)


def free(w: World, pt: PageTables, mm: MMStruct, table: Table) -> k.Steps[None]:
    _take(w, pt, mm, table)
    pt.busy[mm] += 1
    yield from w.hook("page_table_free", mm, table)
    pt.busy[mm] -= 1


def free_tlb(
    w: World, pt: PageTables, mm: MMStruct, table: Table, batch_alloc_fails: bool
) -> k.Steps[None]:
    """munmap: pte_free_tlb through the mmu_gather, then tlb_finish_mmu."""
    _take(w, pt, mm, table)
    pt.busy[mm] += 1
    tlb = tlb_gather_mmu(mm, batch_alloc_fails)
    yield from w.hook("page_table_free_rcu", tlb, table)
    yield from tlb_finish_mmu(tlb)
    pt.busy[mm] -= 1


def defer(w: World, pt: PageTables, mm: MMStruct, table: Table) -> k.Steps[None]:
    """khugepaged's retract_page_tables: the pmd is cleared, then pte_free_defer."""
    _take(w, pt, mm, table)
    w.defer_table(table)
    pt.busy[mm] += 1
    yield from w.hook("pte_free_defer", mm, table)
    pt.busy[mm] -= 1


def reader(w: World, pt: PageTables, mm: MMStruct, table: Table) -> k.Steps[None]:
    """A lockless walker: rcu_read_lock(), read the ptes, rcu_read_unlock()."""
    pt.walked[mm] += 1
    pt.walking[table] += 1
    yield from k.rcu_read_lock()
    yield from k.read_table(table)
    pt.walking[table] -= 1
    yield from k.rcu_read_unlock()
    pt.walked[mm] -= 1


def flush(w: World, pt: PageTables, mm: MMStruct) -> k.Steps[None]:
    """finish_arch_post_lock_switch -> __tlb_flush_mm_lazy at a context switch."""
    pt.touch(mm)
    pt.busy[mm] += 1
    yield from w.hook("tlb_flush_mm_lazy", mm)
    pt.busy[mm] -= 1


def exit_mm(w: World, pt: PageTables, mm: MMStruct, batch_alloc_fails: bool) -> k.Steps[None]:
    """exit_mmap frees every table through the mmu_gather, then the last mmdrop."""
    # Shown as one call, so a race diagram says which frees are the exit.
    yield from w.traced(f"exit_mmap({mm})", _exit_mm(w, pt, mm, batch_alloc_fails))


def _exit_mm(w: World, pt: PageTables, mm: MMStruct, batch_alloc_fails: bool) -> k.Steps[None]:
    mm.exiting = True
    tlb = tlb_gather_mmu(mm, batch_alloc_fails)
    for table in list(pt.live[mm]):
        _take(w, pt, mm, table)
        yield from w.hook("page_table_free_rcu", tlb, table)
    yield from tlb_finish_mmu(tlb)
    del pt.live[mm]
    pt.recent.remove(mm)
    mm.mm_users = 0
    mm.exited = True
    yield from k.mmdrop(mm)
