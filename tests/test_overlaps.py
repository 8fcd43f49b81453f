"""What may overlap follows from the kernel's locks and counts, not from bans.

Each test drives the real operations of stateful/ops.py through the World's
scheduler, step by step, to the point the kernel allows (or forbids), and
checks it there:

- khugepaged's retract_page_tables holds only the file's i_mmap_rwsem, so
  its pte_free_defer runs between two steps of the same mm's exit_mmap,
  after the exit freed the other half of the very page;
- munmap frees its tables under mmap_lock for read, so a fault's
  page_table_alloc runs inside munmap's page_table_free_rcu;
- no task runs in an mm whose mm_users is 0: no fault starts in its exit;
- munmap and exit_mmap flag flush_mm and take mm->context.lock in
  __tlb_flush_mm_lazy at tlb_finish_mmu, where Gerald's hang trace shows
  the holder;
- two faults on one pmd both allocate, and the one that loses pmd_install
  pte_frees its table holding no spinlock, so a softirq may run inside it.
"""

from __future__ import annotations

import pytest
from hypothesis.stateful import RULE_MARKER

from designs.registry import load_designs
from stateful import drain, ops
from stateful.kernel.cpu import Context
from stateful.kernel.memory import Table
from stateful.kernel.mm import MMStruct
from stateful.kernel.world import KernelConfig, World
from stateful.machine import MachineConfig, machine_for
from stateful.replay import Step, replay
from stateful.trace import Event
from stateful.violations import Deadlock, UseAfterFree

DESIGNS = load_designs()


def machine_world(design: str, ncpus: int = 2, **config: object) -> tuple[World, ops.PageTables]:
    kconfig = KernelConfig(ncpus=ncpus, **config)  # type: ignore[arg-type]
    return World.for_design(DESIGNS[design], kconfig), ops.PageTables()


def new_mm(w: World, pt: ops.PageTables, name: str = "mm0", pgste: bool = False) -> MMStruct:
    mm = w.run_to_end(w.cpus[0], "fork", ops.mm_create(w, pt, name, pgste))
    assert isinstance(mm, MMStruct)
    return mm


def fault(w: World, pt: ops.PageTables, mm: MMStruct, where: int, cpu: int = 0) -> Table:
    table = w.run_to_end(w.cpus[cpu], "fault", ops.alloc(w, pt, mm, pt.vmas[mm][where]))
    assert isinstance(table, Table)
    return table


def events_of(w: World, cpu: int) -> list[Event]:
    return [e for e in w.trace.events if e.cpu == cpu and e.kind in ("enter", "step")]


def advance_past(w: World, ctx: Context, text: str) -> None:
    """Step ctx until it has shown a step that starts with `text`."""
    while True:
        seen = len(w.trace.events)
        assert w.runnable(ctx), f"{ctx!r} cannot run before {text!r}: {ctx.blocked}"
        w.advance(ctx)
        if any(e.text.strip().startswith(text) for e in w.trace.events[seen:]):
            return
        assert not ctx.done, f"{ctx!r} ended before {text!r}"


def index(w: World, cpu: int, text: str, after: int = -1) -> int:
    """The sequence number of the first step on cpu starting with text, after `after`."""
    for e in w.trace.events:
        if e.cpu == cpu and e.seq > after and e.text.strip().startswith(text):
            return e.seq
    raise AssertionError(f"no {text!r} on CPU{cpu}:\n{w.trace.render(w.config.ncpus)}")


# --- khugepaged against exit_mmap ----------------------------------------------


def test_pte_free_defer_runs_between_two_steps_of_the_exit_that_freed_the_other_half() -> None:
    w, pt = machine_world("merged-6.6")
    mm = new_mm(w, pt)
    lower = fault(w, pt, mm, ops.ANON)
    upper = fault(w, pt, mm, ops.FILE)
    assert lower.page is upper.page and (lower.bit, upper.bit) == (0, 1)
    mapping = pt.vmas[mm][ops.FILE].file
    assert mapping is not None

    khugepaged = w.start_task(w.cpus[0], "khugepaged", ops.defer(w, pt, mm, upper))
    advance_past(w, khugepaged, "hpage_collapse_test_exit(mm0) -> 0")
    assert khugepaged in mapping.i_mmap_rwsem.readers
    # khugepaged holds no reference: nothing stops the last user going.
    assert mm.mm_users == 1 and pt.exitable() == [mm]

    exiting = w.start_task(w.cpus[1], "exit", ops.exit_mm(w, pt, mm, False))
    w.run(exiting)
    # The exit freed the anonymous VMA's table, the lower half of the page,
    # then went to sleep unlinking the file's VMA: khugepaged reads the tree.
    freed_lower = index(w, 1, "page_table_free_rcu(tlb(mm0), P0.lo)")
    assert not exiting.done and exiting.blocked is not None
    assert exiting.blocked.on is mapping.i_mmap_rwsem and not exiting.blocked.spins
    assert not w.runnable(exiting) and not mm.freed and mm.mm_users == 0

    w.run(khugepaged)
    assert khugepaged.done
    deferred = index(w, 0, "pte_free_defer(mm0, P0.hi)")
    assert freed_lower < deferred
    assert exiting.blocked is not None, "the exit was still inside exit_mmap"
    assert w.runnable(exiting)

    w.run(exiting)
    assert exiting.done and mm.freed
    unlinked = index(w, 1, "i_mmap_lock_write(f0) taken")
    assert deferred < unlinked < index(w, 1, "__mmdrop(mm0)")
    drain.drain(w, pt)  # grace periods, callbacks: nothing is reported, nothing leaks
    assert w.reports == [] and upper.page.freed


def test_the_exit_frees_what_khugepaged_did_not_take() -> None:
    """The exit's unlink waits for the retract; a retract that comes after
    the unlink finds the VMA gone and takes nothing: no table is freed twice."""
    w, pt = machine_world("merged-6.6")
    mm = new_mm(w, pt)
    table = fault(w, pt, mm, ops.FILE)
    mapping = pt.vmas[mm][ops.FILE].file
    assert mapping is not None
    exiting = w.start_task(w.cpus[1], "exit", ops.exit_mm(w, pt, mm, False))
    advance_past(w, exiting, "i_mmap_lock_write(f0)")
    khugepaged = w.start_task(w.cpus[0], "khugepaged", ops.defer(w, pt, mm, table))
    w.run(khugepaged)  # i_mmap_lock_read: sleeps behind the writer
    assert not khugepaged.done and not w.runnable(khugepaged)
    w.run(exiting)
    w.run(khugepaged)
    assert khugepaged.done and exiting.done
    assert not any(e.text.startswith("pte_free_defer") for e in w.trace.events)
    drain.drain(w, pt)
    assert w.reports == [] and table.page.freed


# --- a fault against munmap ----------------------------------------------------


def test_a_fault_allocates_inside_munmaps_page_table_free_rcu_once_it_downgrades() -> None:
    w, pt = machine_world("upstream-6.4")
    mm = new_mm(w, pt)
    table = fault(w, pt, mm, ops.FILE)
    munmap = w.start_task(w.cpus[0], "munmap", ops.free_tlb(w, pt, mm, table, False))
    advance_past(w, munmap, "vma_start_write(mm0:f0)")
    assert mm.mmap_lock.owner is munmap

    # The VMA is write-locked: the fault falls back to mmap_read_lock, and sleeps.
    faulting = w.start_task(w.cpus[1], "fault", ops.alloc(w, pt, mm))
    w.run(faulting)
    index(w, 1, "lock_vma_under_rcu(mm0) -> NULL")
    assert faulting.blocked is not None and faulting.blocked.on is mm.mmap_lock
    assert not any(e.cpu == 1 and e.text.startswith("page_table_alloc") for e in w.trace.events)

    advance_past(w, munmap, "mmap_write_downgrade(mm0)")
    assert mm.mmap_lock.readers == [munmap, faulting] and w.runnable(faulting)
    advance_past(w, munmap, "page_table_free_rcu(tlb(mm0), P0.lo)")
    advance_past(w, munmap, "spin_unlock_bh(&mm0->context.lock)")

    w.run(faulting)
    assert faulting.done and not munmap.done
    w.run(munmap)
    assert munmap.done
    inside = index(w, 0, "page_table_free_rcu(tlb(mm0), P0.lo)")
    allocated = index(w, 1, "page_table_alloc(mm0)")
    assert inside < allocated < index(w, 0, "tlb_remove_table(P0.lo)")
    drain.drain(w, pt)
    assert w.reports == []


def test_munmap_waits_for_a_walker_that_holds_the_vma() -> None:
    """The per-VMA lock: vma_start_write sleeps until the walker's vma_end_read."""
    w, pt = machine_world("upstream-6.4")
    mm = new_mm(w, pt)
    table = fault(w, pt, mm, ops.FILE)
    walker = w.start_task(w.cpus[1], "walker", ops.reader(w, pt, mm, table))
    advance_past(w, walker, "read ptes of P0.lo")
    munmap = w.start_task(w.cpus[0], "munmap", ops.free_tlb(w, pt, mm, table, False))
    w.run(munmap)
    assert munmap.blocked is not None and munmap.blocked.why == "vma_start_write(mm0:f0)"
    w.run(walker)
    assert walker.done and w.runnable(munmap)
    w.run(munmap)
    assert index(w, 1, "vma_end_read(mm0:f0)") < index(w, 0, "vma_start_write(mm0:f0) taken")


# --- no task in an exiting mm --------------------------------------------------


def precondition_holds(machine: object, rule: str) -> bool:
    spec = getattr(getattr(type(machine), rule), RULE_MARKER)
    return all(pre(machine) for pre in spec.preconditions)


def test_no_page_table_alloc_starts_during_the_exit() -> None:
    machine_cls = machine_for(DESIGNS["upstream-6.4"], None, MachineConfig(initial_mms=1))
    machine = machine_cls()
    machine.page_table_alloc(cpu=0, mm=0, vma=0, thp=False, pause=0, irq=0)
    (mm,) = machine.pt.alive()
    assert precondition_holds(machine, "page_table_alloc")
    # The exit, paused after its mmput: mm_users is 0, exit_mmap is to come.
    machine.mm_exit(cpu=0, mm=0, batch_alloc_fails=False, pause=1, irq=0)
    assert mm.mm_users == 0 and not mm.freed and mm in machine.pt.alive()
    assert machine.pt.mms() == []
    for rule in ("page_table_alloc", "pte_free_tlb", "rcu_walker", "tlb_flush_mm_lazy"):
        assert not precondition_holds(machine, rule), rule
    # Nor can the operation itself run there.
    w, pt = machine.world, machine.pt
    task = w.start_task(w.cpus[1], "fault", ops.alloc(w, pt, mm))
    with pytest.raises(RuntimeError, match="no task runs in mm0: its mm_users is 0"):
        w.advance(task)


def test_an_mm_with_a_thread_in_an_operation_cannot_start_its_exit() -> None:
    w, pt = machine_world("upstream-6.4")
    mm = new_mm(w, pt)
    faulting = w.start_task(w.cpus[0], "fault", ops.alloc(w, pt, mm))
    assert w.advance(faulting)
    assert mm.mm_users == 2 and pt.exitable() == []
    w.run(faulting)
    assert mm.mm_users == 1 and pt.exitable() == [mm]


# --- tlb_finish_mmu: flush_mm and mm->context.lock ---------------------------


def nested_under(w: World, cpu: int, first: int, chain: list[str]) -> None:
    """From event `first` on, each text of chain on cpu, each one level deeper."""
    depth, at = None, first
    for text in chain:
        event = next(
            e
            for e in w.trace.events
            if e.cpu == cpu and e.seq >= at and e.text.strip().startswith(text)
        )
        if depth is not None:
            assert event.depth == depth + 1, f"{text!r} is not nested in the step before it"
        depth, at = event.depth, event.seq


FLUSH = [
    "tlb_finish_mmu(tlb(mm0))",
    "tlb_flush_mmu(tlb(mm0))",
    "__tlb_flush_mm_lazy(mm0)",
    "spin_lock(&mm0->context.lock)",
]


def check_flush_at_finish(w: World, cpu: int, start: int) -> None:
    flagged = index(w, cpu, "mm0->context.flush_mm = 1", after=start)
    freed = index(w, cpu, "page_table_free_rcu(tlb(mm0)", after=flagged)
    finish = index(w, cpu, "tlb_finish_mmu(tlb(mm0))", after=freed)
    nested_under(w, cpu, finish, FLUSH)
    read = index(w, cpu, "mm0->context.flush_mm -> 1", after=finish)
    flushed = index(w, cpu, "__tlb_flush_mm(mm0)", after=read)
    unlocked = index(w, cpu, "spin_unlock(&mm0->context.lock)", after=flushed)
    assert unlocked < index(w, cpu, "call_rcu(", after=unlocked)


def test_munmap_flags_flush_mm_and_flushes_under_the_lock_at_tlb_finish_mmu() -> None:
    w, pt = machine_world("upstream-6.4")
    mm = new_mm(w, pt)
    table = fault(w, pt, mm, ops.FILE)
    start = len(w.trace.events)
    w.run_to_end(w.cpus[0], "munmap", ops.free_tlb(w, pt, mm, table, False))
    check_flush_at_finish(w, 0, start)
    nested_under(w, 0, start, ["unmap_region(mm0)", "tlb_finish_mmu(tlb(mm0))"])
    assert not mm.context.flush_mm


def test_exit_mmap_flags_flush_mm_and_flushes_under_the_lock_at_tlb_finish_mmu() -> None:
    w, pt = machine_world("upstream-6.4")
    mm = new_mm(w, pt)
    fault(w, pt, mm, ops.FILE)
    start = len(w.trace.events)
    w.run_to_end(w.cpus[1], "exit", ops.exit_mm(w, pt, mm, False))
    check_flush_at_finish(w, 1, start)
    nested_under(w, 1, start, ["exit_mmap(mm0)", "tlb_finish_mmu(tlb(mm0))"])


def test_the_batch_failure_flushes_the_same_way_before_its_ipi() -> None:
    w, pt = machine_world("upstream-6.4", ncpus=2)
    mm = new_mm(w, pt)
    table = fault(w, pt, mm, ops.FILE)
    w.run_to_end(w.cpus[0], "munmap", ops.free_tlb(w, pt, mm, table, True))
    failed = index(w, 0, "__get_free_page(GFP_NOWAIT) -> NULL")
    lazy = index(w, 0, "__tlb_flush_mm_lazy(mm0)", after=failed)
    locked = index(w, 0, "spin_lock(&mm0->context.lock)", after=lazy)
    ipi = index(w, 0, "tlb_remove_table_sync_one(): IPI", after=locked)
    assert ipi < index(w, 0, "__tlb_remove_table(P0.lo)", after=ipi)


def test_a_softirq_interrupting_munmaps_flush_deadlocks_as_in_the_seed() -> None:
    """hugh-hh: the holder is munmap's tlb_flush_mmu <- tlb_finish_mmu <-
    unmap_region, as in Gerald's hang trace."""
    w, pt = machine_world("hugh-hh", continue_after=frozenset({"lockdep"}))
    mm = new_mm(w, pt)
    first = fault(w, pt, mm, ops.FILE)
    fault(w, pt, mm, ops.FILE)  # the other half stays allocated
    third = fault(w, pt, mm, ops.FILE)
    w.run_to_end(w.cpus[0], "munmap", ops.free_tlb(w, pt, mm, first, False))
    while w.rcu.needs_grace_period():
        w.rcu.try_end_gp()
    assert w.softirq_may_run(w.cpus[0])  # __tlb_remove_table of the first half

    start = len(w.trace.events)
    munmap = w.start_task(w.cpus[0], "munmap", ops.free_tlb(w, pt, mm, third, False))
    advance_past(w, munmap, "spin_lock(&mm0->context.lock)")  # in tlb_finish_mmu
    assert mm.context.lock.holder is munmap
    with pytest.raises(Deadlock, match=r"interrupted CPU0/task:munmap on the same CPU"):
        w.run(w.start_softirq(w.cpus[0]))
    nested_under(w, 0, start, ["unmap_region(mm0)", *FLUSH])
    diagram = w.trace.render(2)
    assert diagram.index("tlb_flush_mmu(tlb(mm0))") < diagram.index("<softirq>")


@pytest.mark.parametrize("design", ["merged-6.6", "full-page-6.8"])
def test_munmap_and_khugepaged_never_both_free_a_table(design: str) -> None:
    """The retract clears the pmd first: munmap's free_pgd_range finds none."""
    w, pt = machine_world(design)
    mm = new_mm(w, pt)
    table = fault(w, pt, mm, ops.FILE)
    munmap = w.start_task(w.cpus[0], "munmap", ops.free_tlb(w, pt, mm, table, False))
    advance_past(w, munmap, "mmap_write_downgrade(mm0)")
    khugepaged = w.start_task(w.cpus[1], "khugepaged", ops.defer(w, pt, mm, table))
    w.run(khugepaged)
    assert khugepaged.done
    w.run(munmap)
    assert munmap.done
    frees = [e.text for e in w.trace.events if e.text.startswith(("pte_free", "page_table_free"))]
    assert frees[0] == f"pte_free_defer(mm0, {table})"
    assert not any(f.startswith(("pte_free_tlb", "page_table_free_rcu")) for f in frees)
    drain.drain(w, pt)
    assert w.reports == []


# --- mms with PGSTEs -------------------------------------------------------------

DEFERRING = sorted(name for name, d in DESIGNS.items() if d.supports_defer)


@pytest.mark.parametrize("design", DEFERRING)
def test_khugepaged_retracts_a_table_of_an_mm_with_pgstes(design: str) -> None:
    """An mm created with PGSTEs (the vm.allocate_pgste sysctl) keeps THP: only
    KVM's s390_enable_sie disables it. So khugepaged retracts its 4K tables,
    and each design's pte_free_defer takes its PGSTE path: here, to the end,
    with nothing reported and the page freed after a grace period."""
    w, pt = machine_world(design)
    mm = new_mm(w, pt, pgste=True)
    assert mm.context.alloc_pgste and not mm.context.has_pgste
    table = fault(w, pt, mm, ops.FILE)
    assert table.bit is None  # a whole 4K page
    assert pt.collapsible_tables() == [(mm, table)]
    w.run_to_end(w.cpus[1], "khugepaged", ops.defer(w, pt, mm, table))
    index(w, 1, f"pte_free_defer(mm0, {table})")
    assert not table.page.freed, "freed before a grace period"
    drain.drain(w, pt)
    assert w.reports == [] and table.page.freed


@pytest.mark.parametrize("design", ["merged-6.6", "full-page-6.8"])
def test_the_merged_warning_reads_mm_has_pgste_not_mm_alloc_pgste(design: str) -> None:
    """v6.6 and v6.8 warn on mm_has_pgste (KVM has enabled SIE), which the
    model never sets: set by hand, the warning fires, as 5647f61ad917 says it
    does on real hardware."""
    w, pt = machine_world(design, continue_after=frozenset({"bad-bits"}))
    mm = new_mm(w, pt, pgste=True)
    table = fault(w, pt, mm, ops.FILE)
    mm.context.has_pgste = True
    w.run_to_end(w.cpus[1], "khugepaged", ops.defer(w, pt, mm, table))
    said = [str(r) for r in w.reports]
    assert any("mm_has_pgste(mm)" in s for s in said), said


# --- two faults on one pmd ----------------------------------------------------------


def _hook_seen_holding(w: World, ctx: Context, hook: str) -> list[str]:
    """Step ctx to the entry of `hook` and return the spinlocks it holds there."""
    advance_past(w, ctx, hook)
    return [str(lock) for lock in ctx.held]


@pytest.mark.parametrize("design", sorted(DESIGNS))
@pytest.mark.parametrize("thp", [False, True])
def test_the_fault_that_loses_pmd_install_pte_frees_its_table_unlocked(
    design: str, thp: bool
) -> None:
    """Both faults found the pmd none and allocated; the second to take the
    pmd lock finds it populated and frees its own table once the lock is
    dropped (__pte_alloc's loser; a THP fault's `unlock_release`): with no
    spinlock held and bh enabled, so an RCU callback may run inside it."""
    w, pt = machine_world(design)
    mm = new_mm(w, pt)
    vma = pt.vmas[mm][ops.ANON if thp else ops.FILE]
    first = w.start_task(w.cpus[0], "fault", ops.alloc(w, pt, mm, vma, thp))
    advance_past(w, first, f"page_table_alloc({mm})")
    assert len(pt.populating) == 1
    second = w.start_task(w.cpus[1], "fault", ops.alloc(w, pt, mm, pmd=pt.populating[0]))
    w.run(second)
    assert second.done and pt.populating == []
    assert _hook_seen_holding(w, first, f"page_table_free({mm}, ") == []
    assert first.bh_disabled == 0
    w.run(first)
    assert first.done
    assert index(w, 0, f"pmd_install({mm}, ") < index(w, 0, f"page_table_free({mm}, ")
    assert pt.count() == 1
    drain.drain(w, pt)
    assert w.reports == []


def test_a_fault_that_finds_the_pmd_populated_allocates_nothing() -> None:
    """pte_alloc tests pmd_none first: a fault that took its VMA lock after
    the other fault populated the pmd has no table to allocate."""
    w, pt = machine_world("upstream-6.4")
    mm = new_mm(w, pt)
    first = w.start_task(w.cpus[0], "fault", ops.alloc(w, pt, mm))
    advance_past(w, first, f"page_table_alloc({mm})")
    pmd = pt.populating[0]
    second = w.start_task(w.cpus[1], "fault", ops.alloc(w, pt, mm, pmd=pmd))
    w.run(first)
    assert first.done and pmd.populated
    w.run(second)
    assert second.done and second.result is None
    assert not any(e.cpu == 1 and e.text.startswith("page_table_alloc") for e in w.trace.events)


def test_the_machine_races_a_fault_only_on_a_pmd_a_fault_in_flight_found_none() -> None:
    machine = machine_for(DESIGNS["upstream-6.4"], None, MachineConfig(initial_mms=1))()
    assert not precondition_holds(machine, "pmd_install_race")
    machine.page_table_alloc(cpu=0, mm=0, vma=0, thp=False, pause=2, irq=0)
    assert precondition_holds(machine, "pmd_install_race")
    machine.pmd_install_race(cpu=0, fault=0, pause=0, irq=0)
    assert not precondition_holds(machine, "pmd_install_race")
    machine.resume(which=0, pause=0, irq=0)
    said = [e.text.strip() for e in machine.world.trace.events]
    assert said.count("page_table_alloc(mm0)") == 2
    assert "pmd_install(mm0, P0.hi): populated already" in said
    machine.teardown()
    assert machine.world.reports == []


def _c2c_through_the_loser() -> list[Step]:
    """c2c224932fd0's race, with the loser's unlocked page_table_free as the
    free: the loser took the upper half of P0, whose lower half munmap hands
    to RCU; its page_table_free clears its AA bit, and the other CPU's
    softirq frees the lower half, and the page with it, before the list_del
    (bh is disabled there, so the interrupt's callbacks run on the other CPU)."""
    return [
        Step.of(
            "page_table_alloc", {"cpu": 0, "mm": 0, "vma": 1, "thp": False, "pause": 0, "irq": 0}
        ),
        # After its page_table_alloc, before pmd_install.
        Step.of(
            "page_table_alloc", {"cpu": 0, "mm": 0, "vma": 0, "thp": False, "pause": 8, "irq": 0}
        ),
        Step.of(
            "pte_free_tlb", {"cpu": 0, "table": 0, "batch_alloc_fails": False, "pause": 0, "irq": 0}
        ),
        Step.of("pmd_install_race", {"cpu": 0, "fault": 0, "pause": 0, "irq": 0}),
        # Inside the loser's page_table_free, after its atomic_xor_bits.
        Step.of("resume", {"which": 0, "pause": 0, "irq": 4}),
    ]


def test_the_loser_of_pmd_install_races_tlb_remove_table_as_before_c2c224932fd0() -> None:
    """The positive control for the unlocked free: pre-c2c-5.16 has no
    temporary PP, and the loser's page_table_free lists a page the other
    half's __tlb_remove_table has freed."""
    machine_cls = machine_for(DESIGNS["pre-c2c-5.16"], None, MachineConfig(initial_mms=1))
    out = replay(machine_cls, _c2c_through_the_loser())
    assert out.skipped_at == []
    assert isinstance(out.violation, UseAfterFree), out.violation
    said = [e.text.strip() for e in out.machine.world.trace.events]
    assert said.index("pmd_install(mm0, P0.hi): populated already") < said.index("__free_page(P0)")
    assert str(out.violation).startswith("use-after-free of struct page in list_del(P0->lru)")


def test_upstreams_temporary_pp_covers_the_loser_of_pmd_install() -> None:
    """The same rule calls on upstream-6.4: its page_table_free sets the
    temporary PP bit under the lock, so the softirq leaves the page alone."""
    machine_cls = machine_for(DESIGNS["upstream-6.4"], None, MachineConfig(initial_mms=1))
    out = replay(machine_cls, _c2c_through_the_loser())
    assert out.skipped_at == [] and out.violation is None and out.other is None
    said = [e.text.strip() for e in out.machine.world.trace.events]
    freeing = said.index("page_table_free(mm0, P0.hi)")
    assert said.index("pmd_install(mm0, P0.hi): populated already") < freeing
    # The softirq ran inside it, as in pre-c2c-5.16's run, and the page
    # was freed by the loser, last.
    assert freeing < said.index("__tlb_remove_table(P0.lo)") < said.index("__free_page(P0)")
