"""The Hypothesis rule-based state machine that drives one design.

Search shape (see README, "Finding races fast"; benchmarks/find_speed.py):
  - an operation starts on an idle CPU and runs to completion unless a drawn
    preemption point pauses it after `pause` steps (0, atomic, most of the
    time and the simplest value), so the few preemptions a race needs are
    cheap to find and to minimize;
  - an interrupt can arrive after any step (`irq`) and runs the ready RCU
    callbacks on top of the interrupted context, where bh is enabled there;
    `softirq` starts them on a CPU by itself, pausing where drawn;
  - grace periods end after every rule unless a reader that started before
    them is still inside; `resume` continues a paused or spinning context;
  - arguments are small integers taken modulo what exists, counted from the
    most recently used CPU, mm and table, so every subsequence of a run is
    still a run (stateful/replay.py relies on it).

What may overlap is not decided here: an operation takes the locks and the
references its caller in mm/ takes (stateful/ops.py), and waits where the
kernel would. A precondition only says what there is to pick: an mm a task
runs in (mm_users > 0) for a thread's operation, a table a thread can reach
by address, one khugepaged can find through its file, an mm whose last user
can go.

Targets: a property (violations of other fatal properties discard the
example, so the search is not derailed into a bug that has its own test),
None (any violation fails), or SURVEY (each example ends quietly at its
first fatal violation, which is recorded; one run hunts every property).
Warning-class reports (lockdep, bad-bits) are recorded and the run goes on,
as the kernel goes on after a splat, unless they are the target.
"""

from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from typing import Any, ClassVar, TypeVar

from attrs import define, field
from hypothesis import note, reject
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from designs.base import Design
from stateful import drain, ops, symmetry
from stateful.kernel.cpu import CPU, Context
from stateful.kernel.world import KernelConfig, World
from stateful.points import POINTS
from stateful.progress import PROGRESS
from stateful.replay import Step
from stateful.violations import PROPERTIES, BadBits, Violation

T = TypeVar("T")

# Picks count from the most recently used object (see ops.PageTables.recent):
# the simplest pick, 0, is drawn most often, as one task keeps working on its
# own mm, its newest table and its CPU.
PICK = st.sampled_from((0, 0, 0, 1, 2, 3, 4, 5, 6, 7))
# Preemption bounding (CHESS): three operations in four run atomically, so
# the search spends its steps on the few preemptions a race needs. Where a
# pause falls is drawn from stateful/points.py's scale.
PAUSE = st.sampled_from((0,) * 36 + POINTS)
# Interrupts come between any two steps, not only where the operation pauses
# for other CPUs: `irq` = k is an interrupt after its k-th step (0: none), on
# the same logarithmic scale as the pauses. Three operations in five are
# interrupted: at three in four, the next operation on a CPU consumed nearly
# every ready callback, and races that need a callback to wait for a later
# operation (a softirq inside a critical section) were found in 0-2 of 3
# seeds; at three in five, 3 of 3 (README, "Finding races fast").
IRQ = st.sampled_from((0,) * 8 + POINTS)
# A softirq is short, so where it pauses is drawn over its whole length.
SOFTIRQ_PAUSE = st.integers(min_value=0, max_value=6)
FAILS = st.booleans()
THP = st.booleans()


@define(frozen=True)
class MachineConfig:
    ncpus: int = 2
    initial_mms: int = 2
    max_mms: int = 3
    # Bound the mm churn of one example: table operations are the workload,
    # and every exit throws away the tables that races need. Measured: with
    # exits unbounded, one rule in seven was an exit (benchmarks/).
    max_mms_created: int = 4
    max_exits: int = 2
    max_tables: int = 6
    # End a grace period after every rule when no reader holds it up, instead
    # of waiting for a `grace_period` rule: GPs are short next to the window
    # of a race, and one rule fewer per bug is a much shorter search.
    auto_grace_period: bool = True


@define
class Failure:
    """The last violation of a property found for a design: the shrunk one, after shrinking."""

    design: str
    property: str
    message: str
    diagram: str
    steps: list[Step] = field(factory=list)


# (design, property) -> the most recent failure; Hypothesis runs the shrunk
# example last, so after a test this is the minimal one.
FAILURES: dict[tuple[str, str], Failure] = {}

# The target of a survey: every example runs until its first fatal
# violation, which is recorded and ends that example quietly; the search
# goes on, so one run of Hypothesis hunts every property of a design.
SURVEY = "*"


@define
class Survey:
    design: str
    examples: int = 0
    clean: int = 0  # examples that reached teardown and drained without a violation
    ended_by: Counter[str] = field(factory=Counter)
    first: dict[str, Failure] = field(factory=dict)  # the shortest seen, per property

    def record(self, failure: Failure) -> None:
        self.ended_by[failure.property] += 1
        held = self.first.get(failure.property)
        if held is None or len(failure.steps) < len(held.steps):
            self.first[failure.property] = failure


SURVEYS: dict[str, Survey] = {}


def recorded(fn: Callable[..., None]) -> Callable[..., None]:
    """Keep each rule call as a replayable Step."""

    @functools.wraps(fn)
    def wrapper(self: KernelMachine, **kwargs: Any) -> None:
        self.steps.append(Step.of(fn.__name__, kwargs))
        fn(self, **kwargs)

    return wrapper


def _pick(items: Sequence[T], index: int) -> T:
    return items[index % len(items)]


class _Probe(RuleBasedStateMachine):
    @rule()
    def nothing(self) -> None:
        """A machine with one rule: what Hypothesis keeps on every machine."""


# What Hypothesis keeps on a machine, and the machine's record of its rule
# calls: not state. Nor is the order in which the CPUs were last used: a
# `cpu` pick counts from it, and every pick is tried, so two states that
# differ only there reach the same calls, each under another pick value.
NOT_STATE = frozenset(vars(_Probe())) | {
    "steps",
    "cpu_recent",
    "interrupt_points",
    "interrupt_probe",
}


class KernelMachine(RuleBasedStateMachine):
    design_cls: ClassVar[type[Design]]
    target: ClassVar[str | None] = None
    machine_config: ClassVar[MachineConfig] = MachineConfig()

    def __init__(self) -> None:
        super().__init__()
        cfg = self.machine_config
        # Warning-class reports let the run go on, as the kernel goes on after
        # a splat, except when they are what this machine hunts.
        warnings = {name for name, cls in PROPERTIES.items() if cls.warning}
        kconfig = KernelConfig(
            ncpus=cfg.ncpus,
            continue_after=frozenset(warnings - {self.target}),
        )
        self.world = World.for_design(self.design_cls, kconfig)
        self.pt = ops.PageTables()
        self.steps: list[Step] = []
        self.ended = False  # a violation or a discard: teardown must not drain
        self.reported_invariants: set[str] = set()
        self.mm_names = 0
        self.seen_reports = 0
        self.exits = 0
        # CPU ids, most recently used first: `cpu=0` is the CPU that ran last.
        self.cpu_recent = list(range(cfg.ncpus))
        # Set by the exhaustive search for one rule call: whether an interrupt
        # after each step of the context it runs would fire (`_run`).
        self.interrupt_points: list[bool] | None = None
        # Set with it: called where such an interrupt would fire, in the
        # state it would fire in (the search keys what follows by that state).
        self.interrupt_probe: Callable[[Context], None] | None = None
        if self.target == SURVEY:
            found = SURVEYS.setdefault(self.design_cls.name, Survey(self.design_cls.name))
            found.examples += 1
            PROGRESS.tick(found.examples, found.ended_by)
        self.world.trace.enabled = False
        for _ in range(cfg.initial_mms):
            self._boot(self._new_mm(pgste=False))
        self.world.trace.enabled = True

    # --- plumbing ---------------------------------------------------------

    def _boot(self, gen: Generator[Any, None, Any]) -> None:
        self.world.run_to_end(self.world.cpus[0], "boot", gen)

    def _new_mm(self, pgste: bool) -> Generator[Any, None, Any]:
        name = f"mm{self.mm_names}"
        self.mm_names += 1
        return ops.mm_create(self.world, self.pt, name, pgste)

    def _guard(self, body: Callable[[], None], discard: bool = True) -> None:
        """Run body; a violation of another property discards the example, or
        (not `discard`) just ends it."""
        try:
            body()
        except Violation as violation:
            self.ended = True
            if self.target == SURVEY:
                self._record(violation)
                return
            if self.target is None or violation.property == self.target:
                self._record(violation)
                raise
            if discard:
                if currently_in_test_context():
                    reject()
                # A replay (stateful/replay.py) is not a Hypothesis test.
                raise UnsatisfiedAssumption() from violation
        finally:
            if self.target == SURVEY:
                for report in self.world.reports[self.seen_reports :]:
                    self._record(report)
                self.seen_reports = len(self.world.reports)

    def _record(self, violation: Violation) -> None:
        diagram = self.world.trace.render(self.world.config.ncpus)
        failure = Failure(
            self.design_cls.name,
            violation.property,
            str(violation),
            diagram,
            list(self.steps),
        )
        if self.target == SURVEY:
            SURVEYS[self.design_cls.name].record(failure)
            return
        FAILURES[(self.design_cls.name, violation.property)] = failure
        if currently_in_test_context():
            note("\n" + diagram)

    def _idle_cpus(self) -> list[CPU]:
        return [cpu for cpu in self.world.cpus if cpu.idle]

    def _touch_cpu(self, cpu: CPU) -> None:
        self.cpu_recent.remove(cpu.id)
        self.cpu_recent.insert(0, cpu.id)

    def _remote_softirq_cpu(self, cpu: CPU) -> CPU | None:
        """Another CPU whose ready callbacks an interrupt there would run now.
        Of several, the first in canonical order (stateful/symmetry.py): a
        choice by what the state holds, never by which CPU ran last, which is
        not state (two machines that differ only there are one state to the
        exhaustive search, so they must go on alike)."""
        others = [c for c in self.world.cpus if c is not cpu and self.world.softirq_may_run(c)]
        if len(others) < 2:
            return others[0] if others else None
        return next(c for c in symmetry.cpu_order(self, NOT_STATE) if c in others)

    def _run(self, ctx: Context, pause: int, irq: int) -> None:
        """Run ctx for `pause` steps of its CPU (0: to its end). With irq = k > 0,
        an interrupt arrives after ctx's k-th step and, where bh is enabled
        there, the ready softirqs run on top of it before it goes on. The
        pause counts the CPU's steps, the softirq's included, so it can fall
        inside the softirq: other CPUs then run while it is half done.

        Where ctx's CPU cannot run them at that step (bh disabled there, or
        nothing ready on it), the interrupt is another CPU's, at the same
        instant: its ready callbacks run there, to their end or until they
        spin, while ctx is between its k-th and next step. One rule call then
        says what would otherwise take a pause, a `softirq` call on the other
        CPU and a `resume`."""
        self._touch_cpu(ctx.cpu)
        if not irq and self.interrupt_points is not None:
            self._run_reading_interrupt_points(ctx, pause, self.interrupt_points)
            return
        if irq and (not pause or irq <= pause):
            self.world.run(ctx, irq)
            cpu = ctx.cpu
            fires = self._interrupt_fires(ctx)
            ctx.left_at_interrupt = fires
            if fires and not self.world.softirq_may_run(cpu):
                remote = self._remote_softirq_cpu(cpu)
                assert remote is not None  # it fires: callbacks are ready somewhere
                self.world.run(self.world.start_softirq(remote))
                self._interrupt_handled(ctx, irq, pause)
            elif fires:
                softirq = self.world.start_softirq(cpu)
                if pause == irq:
                    self.world.run(softirq)
                    return
                taken = self.world.run(softirq, pause - irq if pause else 0)
                self._interrupt_handled(ctx, irq, pause)
                if not softirq.done:
                    return
                irq += taken
            else:
                self._interrupt_handled(ctx, irq, pause)
            if pause and pause <= irq:
                return
            pause = pause - irq if pause else 0
        self.world.run(ctx, pause)

    def _interrupt_handled(self, ctx: Context, irq: int, pause: int) -> None:
        """Where a call with pause = irq stops: the interrupt's softirq has run
        to its end or spun (or nothing fired). The World's pause_probe, if
        set, reads the state there (stateful/exhaustive/trial.py)."""
        if self.world.pause_probe is not None:
            self.world.pause_probe(ctx, irq, pause)

    def _interrupt_fires(self, ctx: Context) -> bool:
        """Whether an interrupt after ctx's last step runs callbacks: ctx has
        not ended, and callbacks are ready where bh is enabled, on ctx's CPU
        or on another. `_run` decides by it, and the exhaustive search reads
        it ahead (`_run_reading_interrupt_points`)."""
        return not ctx.done and any(self.world.softirq_may_run(c) for c in self.world.cpus)

    def _run_reading_interrupt_points(self, ctx: Context, pause: int, points: list[bool]) -> None:
        """`_run` without an interrupt, noting after each step, and where it
        stops, whether an interrupt there would fire: points[k - 1] for
        `irq` = k, and the last for every k past the end."""
        # One run per rule call: the points are counted from its first step.
        assert not points, "a second _run in one rule call reading interrupt points"
        probe = self.interrupt_probe

        def read(c: Context) -> None:
            fires = self._interrupt_fires(c)
            points.append(fires)
            if fires and probe is not None:
                probe(c)

        self.world.step_probe = read
        try:
            self.world.run(ctx, pause)
        finally:
            self.world.step_probe = None

    def _start(
        self, cpu: int, label: str, gen: Generator[Any, None, Any], pause: int, irq: int
    ) -> None:
        """Start on the first idle CPU at or after the `cpu`-th most recently used."""
        n = len(self.world.cpus)
        order = [self.world.cpus[self.cpu_recent[(cpu + i) % n]] for i in range(n)]
        chosen = next(c for c in order if c.idle)
        self._run(self.world.start_task(chosen, label, gen), pause, irq)

    def _op_rule(self, cpu: int, pause: int, irq: int, label: str, gen: Any) -> None:
        self._guard(lambda: self._start(cpu, label, gen, pause, irq))
        self.after_run()

    def after_run(self) -> None:
        """What a rule call does once the contexts it ran have stopped: end
        the grace period (auto_grace_period). The exhaustive search runs it
        where a shorter pause would have stopped the call, and undoes it
        (stateful/exhaustive/trial.py): it must touch no more than RCU's
        grace-period state."""
        if self.machine_config.auto_grace_period and not self.ended:
            self._advance_grace_period()

    def _advance_grace_period(self) -> None:
        self.world.end_grace_period()

    # --- preconditions ----------------------------------------------------

    def _can_start(self) -> bool:
        return bool(self._idle_cpus()) and not self.ended

    def _can_alloc(self) -> bool:
        return (
            self._can_start()
            and bool(self.pt.mms())
            and self.pt.count() < self.machine_config.max_tables
        )

    def _exitable(self) -> list[Any]:
        if self.exits >= self.machine_config.max_exits:
            return []
        return self.pt.exitable()

    def _resumable(self) -> list[Any]:
        return [
            cpu.top
            for cpu in self.world.cpus
            if cpu.top is not None and self.world.runnable(cpu.top)
        ]

    def _softirq_cpus(self) -> list[CPU]:
        return [cpu for cpu in self.world.cpus if self.world.softirq_may_run(cpu)]

    # --- rules: operations started on an idle CPU's task context ------------

    @precondition(lambda self: self._can_alloc())
    @rule(cpu=PICK, mm=PICK, vma=PICK, thp=THP, pause=PAUSE, irq=IRQ)
    @recorded
    def page_table_alloc(
        self, cpu: int, mm: int, pause: int, irq: int, vma: int = 0, thp: bool = False
    ) -> None:
        """A page fault in mm. `vma` and `thp` default to the file mapping and
        no THP: a step written before they existed means what it meant then."""
        m = _pick(self.pt.mms(), mm)
        v = _pick(self.pt.fault_vmas(m), vma)
        huge = thp and v.file is None
        label = f"fault({v}){' THP' if huge else ''}: page_table_alloc({m})"
        self._op_rule(cpu, pause, irq, label, ops.alloc(self.world, self.pt, m, v, huge))

    @precondition(lambda self: self._can_alloc() and bool(self.pt.populating))
    @rule(cpu=PICK, fault=PICK, pause=PAUSE, irq=IRQ)
    @recorded
    def pmd_install_race(self, cpu: int, fault: int, pause: int, irq: int) -> None:
        """A page fault on the addresses of a fault in flight that found its
        pmd none and has not populated it: both allocate a table, and the one
        that finds the pmd populated pte_frees its own (no spinlock held)."""
        pmd = _pick(self.pt.populating, fault)
        m = pmd.vma.mm
        label = f"fault({pmd.vma}){' THP' if pmd.thp else ''}, the same pmd: page_table_alloc({m})"
        self._op_rule(cpu, pause, irq, label, ops.alloc(self.world, self.pt, m, pmd=pmd))

    @precondition(lambda self: self._can_start() and bool(self.pt.deposits()))
    @rule(cpu=PICK, table=PICK, pause=PAUSE, irq=IRQ)
    @recorded
    def page_table_free(self, cpu: int, table: int, pause: int, irq: int) -> None:
        """MADV_DONTNEED of a THP: zap_huge_pmd pte_frees its deposited table."""
        m, t = _pick(self.pt.deposits(), table)
        label = f"MADV_DONTNEED: pte_free({m}, {t})"
        self._op_rule(cpu, pause, irq, label, ops.free(self.world, self.pt, m, t))

    @precondition(lambda self: self._can_start() and bool(self.pt.munmappable()))
    @rule(cpu=PICK, table=PICK, batch_alloc_fails=FAILS, pause=PAUSE, irq=IRQ)
    @recorded
    def pte_free_tlb(
        self, cpu: int, table: int, batch_alloc_fails: bool, pause: int, irq: int
    ) -> None:
        m, t = _pick(self.pt.munmappable(), table)
        label = (
            f"munmap: pte_free_tlb({m}, {t}){' [batch alloc fails]' if batch_alloc_fails else ''}"
        )
        self._op_rule(
            cpu,
            pause,
            irq,
            label,
            ops.free_tlb(self.world, self.pt, m, t, batch_alloc_fails),
        )

    @precondition(
        lambda self: (
            self.design_cls.supports_defer
            and self._can_start()
            and bool(self.pt.collapsible_tables())
        )
    )
    @rule(cpu=PICK, table=PICK, pause=PAUSE, irq=IRQ)
    @recorded
    def pte_free_defer(self, cpu: int, table: int, pause: int, irq: int) -> None:
        m, t = _pick(self.pt.collapsible_tables(), table)
        label = f"khugepaged: pte_free_defer({m}, {t})"
        self._op_rule(cpu, pause, irq, label, ops.defer(self.world, self.pt, m, t))

    @precondition(lambda self: self._can_start() and bool(self.pt.tables()))
    @rule(cpu=PICK, table=PICK, pause=PAUSE, irq=IRQ)
    @recorded
    def rcu_walker(self, cpu: int, table: int, pause: int, irq: int) -> None:
        m, t = _pick(self.pt.tables(), table)
        label = f"rcu walker({t})"
        self._op_rule(cpu, pause, irq, label, ops.reader(self.world, self.pt, m, t))

    @precondition(lambda self: self._can_start() and bool(self.pt.mms()))
    @rule(cpu=PICK, mm=PICK, pause=PAUSE, irq=IRQ)
    @recorded
    def tlb_flush_mm_lazy(self, cpu: int, mm: int, pause: int, irq: int) -> None:
        m = _pick(self.pt.mms(), mm)
        label = f"switch_mm: __tlb_flush_mm_lazy({m})"
        self._op_rule(cpu, pause, irq, label, ops.flush(self.world, self.pt, m))

    @precondition(
        lambda self: (
            self._can_start()
            and len(self.pt.mms()) < self.machine_config.max_mms
            and (self.mm_names < self.machine_config.max_mms_created or not self.pt.vmas)
        )
    )
    @rule(cpu=PICK, pgste=st.booleans(), pause=PAUSE, irq=IRQ)
    @recorded
    def mm_create(self, cpu: int, pgste: bool, pause: int, irq: int) -> None:
        label = f"fork: mm_alloc{'(pgste)' if pgste else ''}"
        self._op_rule(cpu, pause, irq, label, self._new_mm(pgste))

    @precondition(lambda self: self._can_start() and bool(self._exitable()))
    @rule(cpu=PICK, mm=PICK, batch_alloc_fails=FAILS, pause=PAUSE, irq=IRQ)
    @recorded
    def mm_exit(self, cpu: int, mm: int, batch_alloc_fails: bool, pause: int, irq: int) -> None:
        m = _pick(self._exitable(), mm)
        self.exits += 1
        label = f"exit_mmap({m}); mmdrop{' [batch alloc fails]' if batch_alloc_fails else ''}"
        self._op_rule(
            cpu, pause, irq, label, ops.exit_mm(self.world, self.pt, m, batch_alloc_fails)
        )

    # --- rules: scheduling ------------------------------------------------

    @precondition(lambda self: not self.ended and bool(self._resumable()))
    @rule(which=PICK, pause=PAUSE, irq=IRQ)
    @recorded
    def resume(self, which: int, pause: int, irq: int) -> None:
        ctx = _pick(self._resumable(), which)
        self._guard(lambda: self._run(ctx, pause, irq))
        self.after_run()

    @precondition(lambda self: not self.ended and bool(self._softirq_cpus()))
    @rule(which=PICK, pause=SOFTIRQ_PAUSE)
    @recorded
    def softirq(self, which: int, pause: int) -> None:
        cpu = _pick(self._softirq_cpus(), which)

        def body() -> None:
            self._touch_cpu(cpu)
            self.world.run(self.world.start_softirq(cpu), pause)

        self._guard(body)
        self.after_run()

    @precondition(
        lambda self: (
            not self.ended
            and not self.machine_config.auto_grace_period
            and self.world.rcu.needs_grace_period()
        )
    )
    @rule()
    @recorded
    def grace_period(self) -> None:
        self._advance_grace_period()

    # --- checks -----------------------------------------------------------

    @invariant()
    def design_invariants(self) -> None:
        if self.ended:
            return
        for problem in self.world.design.invariants(self.world):
            if problem not in self.reported_invariants:
                self.reported_invariants.add(problem)
                self._guard(lambda p=problem: self.world.report(BadBits, p))

    @precondition(lambda self: self.ended)
    @rule()
    def idle(self) -> None:
        """The example ended in a violation (survey): nothing more happens."""

    def teardown(self) -> None:
        if self.ended:
            return
        # Teardown also runs while Hypothesis unwinds an example it stopped
        # (an overrun): that example can no longer be rejected.
        unwinding = sys.exc_info()[0] is not None
        # The CPUs in canonical order: a state and its mirror drain alike.
        order = symmetry.cpu_order(self, NOT_STATE)
        self._guard(lambda: drain.drain(self.world, self.pt, order), discard=not unwinding)
        if self.target == SURVEY and not self.ended:
            SURVEYS[self.design_cls.name].clean += 1


def machine_for(
    design_cls: type[Design], target: str | None, config: MachineConfig | None = None
) -> type[KernelMachine]:
    """A state machine class for one design, hunting one property (None: any)."""
    attrs: dict[str, Any] = {"design_cls": design_cls, "target": target}
    if config is not None:
        attrs["machine_config"] = config
    name = f"{design_cls.__name__}Machine"
    return type(name, (KernelMachine,), attrs)
