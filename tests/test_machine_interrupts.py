"""Where the machine's `irq` argument runs RCU callbacks: on the operation's
own CPU where bh is enabled there and callbacks are ready on it, else on
another CPU where they may run, at the same instant; nowhere else."""

from __future__ import annotations

from designs.pre_c2c_5_16 import PreC2c516
from designs.upstream_6_4 import Upstream64
from stateful.machine import machine_for
from stateful.replay import replay
from stateful.violations import UseAfterFree
from tests.kernel_helpers import drive, step_on
from tests.kernel_helpers import step as _step

SETUP = [
    _step("page_table_alloc", cpu=0, mm=0, pause=0, irq=0, vma=0, thp=False),
    _step("page_table_alloc", cpu=0, mm=0, pause=0, irq=0, vma=1, thp=True),
    _step("pte_free_tlb", cpu=0, table=0, pause=0, irq=0, batch_alloc_fails=False),
]
# MADV_DONTNEED on the other CPU, interrupted right after page_table_free's
# atomic_xor_bits: the interrupt cannot run softirqs there (bh disabled under
# spin_lock_bh, nothing queued on that CPU), so it is CPU0's, which has the
# munmap's __tlb_remove_table ready.
C2C = [*SETUP, _step("page_table_free", cpu=1, table=0, pause=0, irq=6)]


def test_a_remote_interrupt_runs_the_other_cpus_callbacks_inside_the_window() -> None:
    outcome = replay(machine_for(PreC2c516, None), C2C)
    assert isinstance(outcome.violation, UseAfterFree)
    diagram = outcome.machine.world.trace.render(2)
    lines = diagram.splitlines()
    xor = lines.index(next(ln for ln in lines if "atomic_xor_bits(P0, 0x02) -> 0x10" in ln))
    softirq = lines.index("<softirq>")
    list_del = max(i for i, ln in enumerate(lines) if ln.strip() == "list_del(P0->lru)")
    # CPU1's two steps (right column) with CPU0's softirq (left column) between them.
    assert lines[xor].startswith(" ") and lines[list_del].startswith(" ")
    assert xor < softirq < list_del


def test_the_same_interrupt_on_upstream_64_is_harmless() -> None:
    outcome = replay(machine_for(Upstream64, None), C2C)
    assert outcome.violation is None and outcome.other is None


def test_no_interrupt_runs_callbacks_where_bh_is_disabled() -> None:
    """CPU0 has a callback ready but is inside spin_lock_bh: an interrupt on
    CPU1's operation finds no CPU that may run it, and nothing runs."""
    machine = drive(Upstream64, SETUP)
    world = machine.world
    assert world.rcu.has_ready(0)
    cpu0 = world.cpus[0]
    # A fault on CPU0 paused once it holds mm->context.lock with spin_lock_bh.
    for pause in range(1, 20):
        probe = drive(Upstream64, SETUP)
        step_on(probe, _step("page_table_alloc", cpu=0, mm=0, pause=pause, irq=0, vma=0, thp=False))
        if probe.world.cpus[0].top is not None and probe.world.cpus[0].top.bh_disabled:
            break
    else:
        raise AssertionError("no pause of page_table_alloc holds spin_lock_bh")
    step_on(machine, _step("page_table_alloc", cpu=0, mm=0, pause=pause, irq=0, vma=0, thp=False))
    assert cpu0.top is not None and cpu0.top.bh_disabled
    assert not world.softirq_may_run(cpu0)
    step_on(machine, _step("mm_create", cpu=1, pgste=False, pause=0, irq=1))
    assert world.rcu.has_ready(0), "a callback ran on a CPU with bh disabled"
    assert cpu0.softirq is None
