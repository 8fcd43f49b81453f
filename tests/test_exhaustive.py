"""The bounded exhaustive search (stateful/exhaustive/): its bound, its soundness, its answers.

Each pruning is checked the one way that shows it loses nothing: on a small
bound, the search with it and the search without it reach the same states
and the same violations. The bounds here are small so that the file runs
in seconds; benchmarks/exhaustive_speed.py measures the real ones.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from designs.registry import load_designs
from stateful.cli import usage
from stateful.exhaustive import (
    DEFAULT_BOUND,
    PROVED,
    BoundError,
    Pruning,
    estimate,
    explore,
    parse_bound,
    too_large,
    trial,
)
from stateful.exhaustive.bound import AXES, FORM
from stateful.exhaustive.rules import Budget, Pick, pick_domain
from stateful.exhaustive.search import AfterInterrupt, Explorer, Node
from stateful.exhaustive.trial import state_of
from stateful.exhaustive.verdict import replayed
from stateful.fingerprint import StateError, fingerprint
from stateful.machine import NOT_STATE
from stateful.replay import Step
from stateful.replay_file import ReplayFile, check_replay, load_replay, save_replay
from stateful.rules import Rule, rules_of
from stateful.violations import Violation
from tests.kernel_helpers import step as _step

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = load_designs()
# One mm, no exits, no PGSTE, no batch failure: seconds, not minutes.
LEAN = "boot=1,mms=1,exits=0,pgste=0,batch=0"
SMALL = f"S=1,C=1,P=1,I=1,tables=1,{LEAN}"
# Long enough for every operation at SMALL: the searches without pause or
# interrupt narrowing try every point below it.
FULL_RANGE = 24


# The c2c224932fd0 setup: both halves of one page allocated (the second
# through a THP fault, which deposits it for page_table_free), the first
# freed through the mmu_gather, its __tlb_remove_table queued.
C2C_SETUP = (
    _step("page_table_alloc", cpu=0, irq=0, mm=0, pause=0, thp=False, vma=0),
    _step("page_table_alloc", cpu=0, irq=0, mm=0, pause=0, thp=True, vma=1),
    _step("pte_free_tlb", batch_alloc_fails=False, cpu=0, irq=0, pause=0, table=0),
)
C2C_BOUND = f"S=3,C=1,P=1,I=1,tables=2,{LEAN}"

# --- the bound -----------------------------------------------------------------


def test_bound_takes_any_subset_of_its_axes() -> None:
    bound = parse_bound("S=2, P=0,tables=5")
    assert (bound.setup, bound.preemptions, bound.tables) == (2, 0, 5)
    assert bound.concurrent == DEFAULT_BOUND.concurrent
    assert bound.cpus == DEFAULT_BOUND.cpus


def test_bound_prints_every_axis_and_reads_back() -> None:
    bound = parse_bound("S=3,C=1,P=1,I=2,cpus=3")
    shown = str(bound)
    assert [part.split("=")[0] for part in shown.split()] == [a.key for a in AXES]
    assert parse_bound(shown.replace(" ", ",")) == bound
    explained = "\n".join(bound.explained())
    for axis in AXES:
        assert axis.meaning in explained
    assert "grace periods" in explained and "drained" in explained


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("S", "not AXIS=N"),
        ("Q=1", "not AXIS=N"),
        ("S=x", "not a whole number"),
        ("S=-1", "not a whole number"),
        ("cpus=0", "at least 1"),
        ("pgste=2", "at most 1"),
        ("S=1,S=2", "given twice"),
        ("boot=3,mms=2", "exceeds"),
    ],
)
def test_invalid_bound_is_refused_with_the_valid_form(text: str, says: str) -> None:
    with pytest.raises(BoundError) as refused:
        parse_bound(text)
    assert says in str(refused.value)
    if "AXIS" in says or "empty" in says or "number" in says:
        assert FORM in str(refused.value)


def _pgfrag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stateful.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_pgfrag_refuses_an_invalid_bound_before_running() -> None:
    run = _pgfrag("--exhaustive", "--bound", "S=1,Q=2", "-n", "0")
    assert run.returncode == 4, run.stdout + run.stderr
    assert "valid form" in run.stderr and FORM in run.stderr


def test_a_bound_too_large_says_so_with_its_estimate() -> None:
    design = DESIGNS["upstream-6.4"]
    assert too_large([design], parse_bound(SMALL)) is None
    refusal = too_large([design], parse_bound("S=6,C=4"))
    assert refusal is not None
    assert "estimated at" in refusal and "scenarios" in refusal
    assert "over-counts" in refusal  # a guard, and it says so
    run = _pgfrag("--exhaustive", "--bound", "S=6,C=4", "--design", "upstream-6.4", "-n", "0")
    assert run.returncode == 4, run.stdout + run.stderr
    assert "estimated at" in run.stderr and "--bound-confirm" in run.stderr


@pytest.mark.parametrize("bound", ["S=2", "S=1,C=1,P=2", "S=1,C=2,P=1"])
def test_the_estimate_over_counts_what_the_search_runs(bound: str) -> None:
    """What the refusal claims, checked on small bounds, one per axis grown."""
    design = DESIGNS["upstream-6.4"]
    b = parse_bound(bound)
    assert estimate(design, b).runs > explore(design, b).result.executed


def test_the_default_bound_is_not_refused() -> None:
    assert too_large(list(DESIGNS.values()), DEFAULT_BOUND) is None


def test_pgfrag_help_opens_with_its_own_usage() -> None:
    run = _pgfrag("--help")
    assert run.returncode == 0
    assert run.stdout.startswith("usage: pgfrag")
    assert "pytest.main()" not in run.stdout
    assert "examples:" in run.stdout
    options = re.findall(r'addoption\(\s*"(--[a-z-]+)"', (ROOT / "conftest.py").read_text())
    assert options, "conftest.py registers pgfrag's options"
    for option in options:
        assert option in usage(), f"{option} is missing from pgfrag --help"


# --- the rule language -----------------------------------------------------------


def test_pick_records_the_modulus_it_is_taken_by() -> None:
    moduli: set[int] = set()
    raw = [False]
    pick = Pick(0, moduli, raw)
    assert ["a", "b", "c"][pick % 3] == "a"
    assert [10, 11][(pick + 1) % 2] == 11
    assert moduli == {3, 2} and not raw[0]
    rules = rules_of(Explorer(DESIGNS["hugh-hh"], DEFAULT_BOUND).machine_cls)
    arg = next(a for r in rules for a in r.args if a.kind == "pick")
    assert pick_domain(arg, moduli, False) == tuple(v for v in arg.values if v < 6)
    # Read as an index, it asks nothing: taken by no modulus, every value is tried.
    assert pick_domain(arg, set(), False) == arg.values
    assert pick < 1  # compared: its value matters as such
    assert raw[0] and pick_domain(arg, moduli, True) == arg.values


def test_every_rule_argument_has_a_kind() -> None:
    explorer = Explorer(DESIGNS["hugh-hh"], DEFAULT_BOUND)
    kinds = {a.kind for r in explorer.rules for a in r.args}
    assert kinds <= {"pause", "irq", "flag", "pick"}
    assert {"pause", "irq", "pick"} <= kinds


def test_the_nodes_share_equal_steps_but_a_flag_is_not_a_number() -> None:
    explorer = Explorer(DESIGNS["upstream-6.4"], DEFAULT_BOUND)
    flag = explorer._once(Step("pte_free_tlb", (("batch_alloc_fails", True), ("cpu", 0))))
    again = explorer._once(Step("pte_free_tlb", (("batch_alloc_fails", True), ("cpu", 0))))
    number = explorer._once(Step("pte_free_tlb", (("batch_alloc_fails", 1), ("cpu", 0))))
    assert again is flag
    assert number == flag and number is not flag  # equal to Python, another step to a replay
    assert number.args[0][1] is not True and flag.args[0][1] is True


# --- the fingerprint ---------------------------------------------------------------


def _machine_after(design: str, steps: tuple[Step, ...]) -> object:
    return Explorer(DESIGNS[design], parse_bound(C2C_BOUND))._replay(steps)


def test_the_same_state_has_the_same_fingerprint() -> None:
    a = _machine_after("pre-c2c-5.16", C2C_SETUP)
    b = _machine_after("pre-c2c-5.16", C2C_SETUP)
    assert fingerprint(a, NOT_STATE) == fingerprint(b, NOT_STATE)
    c = _machine_after("pre-c2c-5.16", C2C_SETUP[:2])
    assert fingerprint(a, NOT_STATE) != fingerprint(c, NOT_STATE)


def test_which_cpu_ran_last_is_not_state() -> None:
    """A `cpu` pick counts from the CPU used last; every pick is tried, so the
    two orders reach the same calls."""
    on0 = _machine_after("pre-c2c-5.16", C2C_SETUP[:1])
    on1 = _machine_after(
        "pre-c2c-5.16",
        (_step("page_table_alloc", cpu=1, irq=0, mm=0, pause=0, thp=False, vma=0),),
    )
    assert on0.cpu_recent != on1.cpu_recent  # type: ignore[attr-defined]
    assert fingerprint(on0, NOT_STATE) == fingerprint(on1, NOT_STATE)


def test_an_interrupt_on_another_cpu_does_not_depend_on_which_cpu_ran_last() -> None:
    """Three CPUs: a callback ready on CPU1 and one on CPU2, none on CPU0;
    a fault on CPU0 is interrupted where CPU0 has nothing to run, so the
    interrupt is another CPU's. Which CPU ran last is not state (the cache
    takes two such machines as one), so it must not choose that CPU."""
    bound = "S=5,C=1,P=1,I=1,cpus=3,tables=2,boot=1,mms=1,exits=0,pgste=0,batch=0"
    explorer = Explorer(DESIGNS["upstream-6.4"], parse_bound(bound))
    fault = _step("page_table_alloc", cpu=0, irq=0, mm=0, pause=0, thp=False, vma=0)
    setup = (
        fault,
        fault,
        _step("pte_free_tlb", batch_alloc_fails=False, cpu=1, irq=0, pause=0, table=0),
        _step("pte_free_tlb", batch_alloc_fails=False, cpu=2, irq=0, pause=0, table=0),
    )
    ends = []
    for recent in ([2, 1, 0], [1, 2, 0]):  # CPU0 is the `cpu=2` pick either way
        machine = explorer._replay(setup)
        assert sorted(machine.world.rcu.queues) == [1, 2] and machine.cpu_recent == [2, 1, 0]
        machine.cpu_recent = recent
        assert state_of(machine, symmetric=False) == state_of(explorer._replay(setup), False)
        machine.page_table_alloc(cpu=2, irq=1, mm=0, pause=0, thp=False, vma=0)
        assert sum(map(len, machine.world.rcu.queues.values())) == 1  # one callback ran
        ends.append(state_of(machine, symmetric=False))
    assert ends[0] == ends[1]


def test_a_paused_context_is_part_of_the_state() -> None:
    paused = [
        _machine_after(
            "pre-c2c-5.16",
            (*C2C_SETUP, _step("page_table_free", cpu=1, irq=0, pause=k, table=0)),
        )
        for k in (2, 3)
    ]
    assert fingerprint(paused[0], NOT_STATE) != fingerprint(paused[1], NOT_STATE)


def test_a_softirq_run_to_its_end_leaves_the_task_it_interrupted_with_no_preemption() -> None:
    """A switch at the end of an operation is free: resuming a softirq paused
    inside an interrupt to its end switches away from nothing it ran; the
    task it interrupted, on top again, was left where it was. A pause that
    falls inside the softirq is a preemption."""
    interrupted = (
        _step("page_table_alloc", cpu=0, irq=0, mm=0, pause=0, thp=False, vma=0),
        _step("pte_free_tlb", batch_alloc_fails=False, cpu=0, irq=0, pause=0, table=0),
        _step("page_table_alloc", cpu=0, irq=1, mm=0, pause=2, thp=False, vma=0),
    )
    machine: Any = _machine_after("upstream-6.4", interrupted)
    cpu = next(c for c in machine.world.cpus if c.softirq is not None)
    task = cpu.task
    assert task is not None and not task.done
    ended = trial.call(machine, "resume", {"which": 0, "pause": 0, "irq": 0})
    assert ended.fatal is None and cpu.softirq is None and cpu.top is task
    assert machine.world.runnable(task)
    assert not ended.preempted
    again: Any = _machine_after("upstream-6.4", interrupted)
    paused = trial.call(again, "resume", {"which": 0, "pause": 1, "irq": 0})
    assert paused.preempted


def test_a_pause_at_the_end_of_a_softirq_is_no_preemption() -> None:
    """A switch at the end of an operation is free, a softirq's included:
    a fault interrupted after its first step, whose softirq runs to its end
    and the call stops there, left the fault able to run (the pause fell)
    but was switched away from at the softirq's end. A pause one step into
    the softirq is a preemption."""
    setup = (
        _step("page_table_alloc", cpu=0, irq=0, mm=0, pause=0, thp=False, vma=0),
        _step("pte_free_tlb", batch_alloc_fails=False, cpu=0, irq=0, pause=0, table=0),
    )
    args = {"cpu": 0, "mm": 0, "vma": 0, "thp": False, "irq": 1}
    machine: Any = _machine_after("upstream-6.4", setup)
    out = trial.call(machine, "page_table_alloc", args | {"pause": 1})
    cpu = next(c for c in machine.world.cpus if c.task is not None)
    assert cpu.softirq is None and not cpu.task.done and machine.world.runnable(cpu.task)
    assert out.fatal is None and out.paused and not out.preempted and not out.spun
    again: Any = _machine_after("upstream-6.4", setup)
    inside = trial.call(again, "page_table_alloc", args | {"pause": 2})
    assert inside.paused and inside.preempted


def test_with_no_preemption_left_the_pause_at_the_end_of_a_softirq_is_searched() -> None:
    """The free pause at an interrupt is tried where the bound allows no
    preemption: at P=0 the search reaches the fault left at its interrupt,
    the softirq run to its end."""
    setup = (
        _step("page_table_alloc", cpu=0, irq=0, mm=0, pause=0, thp=False, vma=0),
        _step("pte_free_tlb", batch_alloc_fails=False, cpu=0, irq=0, pause=0, table=0),
    )
    stopped = (*setup, _step("page_table_alloc", cpu=0, irq=1, mm=0, pause=1, thp=False, vma=0))
    target = state_of(_machine_after("upstream-6.4", stopped), symmetric=True)
    bound = parse_bound("S=2,C=1,P=0,I=1,tables=2")
    search = Explorer(DESIGNS["upstream-6.4"], bound, setup=setup)
    search.run()
    assert target in search.states


def test_a_softirq_switched_away_from_at_its_spin_is_no_preemption() -> None:
    """A switch at a spin is free, judged where the call left the context:
    an interrupt on the other CPU runs callbacks there that spin on a lock
    the interrupted fault holds; the fault goes on to its end and releases
    it. The softirq can run by the call's end, but it was switched away
    from at its spin."""
    setup = (
        _step("page_table_alloc", cpu=0, irq=0, mm=0, pause=0, thp=False, vma=0),
        _step("page_table_alloc", cpu=0, irq=0, mm=0, pause=0, thp=False, vma=0),
        _step("pte_free_tlb", batch_alloc_fails=False, cpu=0, irq=0, pause=0, table=0),
    )
    machine: Any = _machine_after("typesafe-rcu", setup)
    args = {"cpu": 1, "mm": 0, "vma": 0, "thp": False, "pause": 0, "irq": 3}
    out = trial.call(machine, "page_table_alloc", args)
    softirq = next(c.softirq for c in machine.world.cpus if c.softirq is not None)
    assert softirq.cpu.task is None and machine.world.runnable(softirq)
    assert out.fatal is None and not out.preempted and out.spun
    # Stopped at the interrupt (pause = irq), the fault was left by the
    # interrupt and the softirq at its spin: the pause fell, both switches free.
    again: Any = _machine_after("typesafe-rcu", setup)
    stopped = trial.call(again, "page_table_alloc", args | {"pause": 3})
    fault = next(c.task for c in again.world.cpus if c.task is not None)
    assert not fault.done and again.world.runnable(fault)
    assert stopped.paused and stopped.spun and not stopped.preempted


def _mirrored(design: str) -> tuple[Any, Any]:
    """One state reached twice, its CPUs swapped: a fault on CPU0, a munmap
    paused on CPU1, a walker asleep on CPU0 behind the munmap's mmap_lock;
    and the same with CPU1 and CPU0 the other way round (a `cpu` pick counts
    from the CPU used last)."""

    def path(first: int) -> tuple[Step, ...]:
        return (
            _step("page_table_alloc", cpu=first, irq=0, mm=0, pause=0, thp=False, vma=0),
            _step("pte_free_tlb", batch_alloc_fails=False, cpu=1, irq=0, pause=2, table=0),
            _step("rcu_walker", cpu=0, irq=0, pause=0, table=0),
        )

    return _machine_after(design, path(0)), _machine_after(design, path(1))


def test_a_state_and_its_mirror_are_one_state() -> None:
    x, y = _mirrored("hugh-hh")
    assert [c.task.label for c in x.world.cpus] == [c.task.label for c in y.world.cpus][::-1]
    assert fingerprint(x, NOT_STATE) != fingerprint(y, NOT_STATE)
    assert state_of(x, symmetric=True) == state_of(y, symmetric=True)


def test_numbering_the_cpus_is_undone() -> None:
    x, _ = _mirrored("hugh-hh")
    before = fingerprint(x, NOT_STATE)
    cpus, queues = list(x.world.cpus), x.world.rcu.queues
    with x.world.cpus_numbered(cpus[::-1]):
        assert [c.id for c in x.world.cpus] == [0, 1] and x.world.cpus == cpus[::-1]
        assert fingerprint(x, NOT_STATE) != before
    assert x.world.cpus == cpus and [c.id for c in cpus] == [0, 1]
    assert x.world.rcu.queues is queues
    assert fingerprint(x, NOT_STATE) == before


def test_a_state_and_its_mirror_drain_alike() -> None:
    """The drain visits the CPUs in canonical order, never by number: with a
    munmap paused on one CPU and a fault on the other, both states drain
    step for step alike (by number, one would start with the fault, the
    other with the munmap)."""

    def path(first: int) -> tuple[Step, ...]:
        return (
            _step("page_table_alloc", cpu=first, irq=0, mm=0, pause=0, thp=False, vma=0),
            _step("pte_free_tlb", batch_alloc_fails=False, cpu=0, irq=0, pause=2, table=0),
            _step("page_table_alloc", cpu=1, irq=0, mm=0, pause=1, thp=False, vma=1),
        )

    def drained(first: int) -> tuple[list[str], list[str]]:
        machine = _machine_after("hugh-hh", path(first))
        trace = machine.world.trace
        trace.enabled, start = True, len(trace.events)
        machine.teardown()
        steps = [re.sub(r"\bCPU\d", "CPU#", e.text) for e in trace.events[start:]]
        return steps, [r.property for r in machine.world.reports]

    x, y = drained(0), drained(1)
    assert x[0] and x == y


def test_a_text_naming_a_cpu_stops_the_fingerprint() -> None:
    """A state that held "CPU1" would tell a state from its mirror, or merge
    two states that differ: the fingerprint refuses it."""
    machine = _machine_after("upstream-6.4", ())
    machine.world.design.stray = "held by CPU1/task"  # type: ignore[attr-defined]
    with pytest.raises(StateError, match="names a CPU by its number"):
        fingerprint(machine, NOT_STATE)


def test_an_unknown_kind_of_value_stops_the_fingerprint() -> None:
    machine = _machine_after("upstream-6.4", ())
    machine.world.design.stray = memoryview(b"x")  # type: ignore[attr-defined]
    with pytest.raises(StateError, match="memoryview"):
        fingerprint(machine, NOT_STATE)


# --- soundness of each pruning -------------------------------------------------------


def _search(design: str, bound: str, pruning: Pruning) -> Explorer:
    explorer = explore(DESIGNS[design], parse_bound(bound), pruning)
    assert explorer.result.complete
    assert explorer.longest_op < pruning.full_range, "raise FULL_RANGE"
    return explorer


def _plain_calls(explorer: Explorer, arg: str) -> Iterator[tuple[Node, Rule, dict[str, Any]]]:
    """At each node the search reached, each rule enabled there that takes
    `arg`, with its other arguments 0 (or False)."""
    for node in explorer.nodes:
        machine = explorer._replay(node.path)
        for rule in explorer.rules:
            if rule.arg(arg) is not None and rule.enabled(machine):
                yield node, rule, {a.name: False if a.kind == "flag" else 0 for a in rule.args}


@pytest.fixture(scope="module")
def pruned() -> Explorer:
    return _search("hugh-v1", SMALL, Pruning(full_range=FULL_RANGE))


@pytest.mark.parametrize(
    "without",
    [
        Pruning(cache=False, full_range=FULL_RANGE),
        Pruning(pauses=False, full_range=FULL_RANGE),
        Pruning(interrupts=False, full_range=FULL_RANGE),
    ],
    ids=["state-cache", "pause-narrowing", "interrupt-narrowing"],
)
def test_pruning_loses_no_state_and_no_violation(pruned: Explorer, without: Pruning) -> None:
    plain = _search("hugh-v1", SMALL, without)
    assert pruned.violations, "the bound is too small to show anything"
    assert plain.violations == pruned.violations
    assert plain.states == pruned.states
    assert plain.result.executed > pruned.result.executed


@pytest.mark.parametrize(
    ("design", "bound"),
    [("hugh-v1", SMALL), ("hugh-hh", f"S=1,C=2,P=1,I=1,tables=1,{LEAN}")],
    ids=["one-in-flight", "two-in-flight"],
)
def test_cpu_symmetry_loses_no_state_and_no_violation(design: str, bound: str) -> None:
    """Without it, every state reached, read with its CPUs numbered
    canonically, is one the search with it reached, and the other way round."""
    with_it = _search(design, bound, Pruning(full_range=FULL_RANGE))
    without = _search(design, bound, Pruning(symmetry=False, full_range=FULL_RANGE))
    assert with_it.violations and without.violations == with_it.violations
    assert without.canonical_states() == with_it.states
    assert len(without.states) > len(with_it.states)
    assert without.result.executed > with_it.result.executed
    assert {p: c.cost for p, c in without.result.found.items()} == {
        p: c.cost for p, c in with_it.result.found.items()
    }


def test_pick_narrowing_loses_no_state_and_no_violation() -> None:
    bound = "S=2,C=0,P=0,I=1,tables=2,boot=1,mms=2,exits=1,pgste=1,batch=1"
    narrowed = _search("hugh-v1", bound, Pruning())
    plain = _search("hugh-v1", bound, Pruning(picks=False))
    assert narrowed.violations and plain.violations == narrowed.violations
    assert plain.states == narrowed.states
    assert plain.result.executed > 10 * narrowed.result.executed


def test_an_interrupt_point_read_on_the_call_without_it_says_whether_it_fires(
    pruned: Explorer,
) -> None:
    """The search skips an interrupt point the call without it reads as one
    where nothing would fire: tried there, it must change nothing."""
    tried = {True: 0, False: 0}
    for node, rule, args in _plain_calls(pruned, "irq"):
        base = trial.call(pruned._replay(node.path), rule.name, args, interrupt_points=True)
        if base.fatal is not None:
            continue  # every other schedule runs the same steps up to it, or fewer
        points = base.interrupt_points
        assert points, f"{rule.name} at {node.path} read no interrupt point"
        for j in range(1, len(points) + 2):
            out = trial.call(pruned._replay(node.path), rule.name, args | {"irq": j})
            fired = out.fatal is not None or out.digest != base.digest
            assert fired == points[min(j, len(points)) - 1], (node.path, rule.name, j)
            tried[fired] += 1
    assert tried[True] and tried[False], tried


# A search with one operation in flight after the setup, and one with two.
IN_FLIGHT = pytest.mark.parametrize(
    ("design", "bound"),
    [
        ("hugh-v1", "S=2,C=1,P=1,I=1,tables=2," + LEAN),
        ("hugh-hh", f"S=1,C=2,P=1,I=1,tables=1,{LEAN}"),
    ],
    ids=["one-in-flight", "two-in-flight"],
)


def _same_search(plain: Explorer, other: Explorer) -> None:
    """The two searches find and cover the same: violations, states, counts
    and shortest counterexamples."""
    assert other.violations and plain.violations == other.violations
    assert plain.states == other.states
    for field in ("executed", "interleavings", "scenarios"):
        assert getattr(plain.result, field) == getattr(other.result, field), field
    assert {p: (c.steps, c.message) for p, c in plain.result.found.items()} == {
        p: (c.steps, c.message) for p, c in other.result.found.items()
    }


def _seen(out: trial.Outcome) -> tuple[Any, ...]:
    """What the search takes from an outcome: the violation, the warnings,
    the flags it charges the call by, and the state."""
    fatal = out.fatal.property if out.fatal is not None else None
    flags = (out.preempted, out.spun, out.paused, out.quiescent)
    warned = [w.property for w in out.warnings]
    return (fatal, warned, flags, out.digest if fatal is None else None)


@IN_FLIGHT
def test_reading_pauses_on_the_way_changes_nothing(design: str, bound: str) -> None:
    """The states of a call's pauses, read on the way through the call that
    does not pause (Pruning.read_pauses), are the states the calls with
    those pauses reach: the search finds the same, and runs fewer calls."""
    read = explore(DESIGNS[design], parse_bound(bound))
    plain = explore(DESIGNS[design], parse_bound(bound), Pruning(read_pauses=False))
    _same_search(plain, read)
    assert plain.result.read == 0 < read.result.read


def test_every_pause_read_on_the_way_is_the_call_with_that_pause(pruned: Explorer) -> None:
    """Outcome by outcome, not only in sum: each pause read on the way
    through a call, after an interrupt or not, is what the call with that
    pause does, the flags the search charges by included."""
    compared = 0
    for node, rule, args in _plain_calls(pruned, "pause"):
        for irq in (0, 1, 2) if rule.arg("irq") is not None else (0,):
            pauses: dict[int, trial.Outcome] = {}
            budget = args | {"pause": Budget([])} | ({"irq": irq} if irq else {})
            trial.call(pruned._replay(node.path), rule.name, budget, pauses=pauses)
            for k, out in pauses.items():
                real = trial.call(pruned._replay(node.path), rule.name, budget | {"pause": k})
                assert _seen(out) == _seen(real), (node.path, rule.name, irq, k)
                compared += 1
    assert compared > 100, compared


def test_a_pause_read_on_the_way_is_checked_when_its_state_is_new(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What reading a pause moves must be put back before the call goes on:
    were it not, the search says so where it replays a new state to drain it.
    Here each read leaves a mark in the design's state."""
    restore = trial._Undo.restore

    def leaky(undo: Any) -> None:
        restore(undo)
        design = undo.machine.world.design
        design.leaked = getattr(design, "leaked", 0) + 1

    monkeypatch.setattr(trial._Undo, "restore", leaky)
    with pytest.raises(RuntimeError, match="does not reach the state read on the way"):
        explore(DESIGNS["hugh-v1"], parse_bound(SMALL))


@IN_FLIGHT
def test_taking_what_follows_an_interrupt_changes_nothing(design: str, bound: str) -> None:
    """A call whose interrupt fires in a state (and on a context) where an
    earlier call's fired takes that call's outcomes from there
    (Pruning.after_interrupt): the search finds the same, and runs fewer."""
    taken = explore(DESIGNS[design], parse_bound(bound))
    plain = explore(DESIGNS[design], parse_bound(bound), Pruning(after_interrupt=False))
    _same_search(plain, taken)
    assert plain.result.reused == 0 < taken.result.reused


def test_every_call_taken_after_an_interrupt_is_the_call_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outcome by outcome: each outcome a call takes from an earlier call
    whose interrupt fired in the same state is what the call does when run,
    its own warnings and the flags the search charges by included."""
    taken: list[tuple[Node, str, dict[str, Any], int, trial.Outcome]] = []
    where: dict[str, Any] = {}
    schedules, at = Explorer._schedules, AfterInterrupt.at

    def spy_schedules(self: Explorer, node: Node, rule: Rule, fixed: Any, *rest: Any) -> None:
        where.update(node=node, rule=rule.name, fixed=fixed)
        schedules(self, node, rule, fixed, *rest)

    def spy_at(self: AfterInterrupt, j: int, reports: Any) -> trial.Outcome:
        out = at(self, j, reports)
        taken.append((where["node"], where["rule"], dict(where["fixed"]), j, out))
        return out

    monkeypatch.setattr(Explorer, "_schedules", spy_schedules)
    monkeypatch.setattr(AfterInterrupt, "at", spy_at)
    explorer = explore(DESIGNS["hugh-hh"], parse_bound(f"S=2,C=1,P=1,I=1,tables=2,{LEAN}"))
    compared = 0
    for node, rule, fixed, j, out in taken[::7]:
        pauses: dict[int, trial.Outcome] = {}
        args = fixed | {"pause": Budget([]), "irq": j}
        real = trial.call(explorer._replay(node.path), rule, args, pauses=pauses)
        assert _seen(out) == _seen(real), (node.path, rule, j)
        assert out.shorter is not None
        for k, read in out.shorter.items():
            assert _seen(read) == _seen(pauses[k]), (node.path, rule, j, k)
            compared += 1
    assert len(taken) > 50 and compared > 100, (len(taken), compared)


def test_a_call_back_where_it_began_is_not_taken_for_another() -> None:
    """A stop with the interrupted context back where its call began reads
    as "not run by the call": outcomes with such a stop are taken by no
    call that began elsewhere, nor at a start one of them stops at."""
    out = trial.Outcome(None, None, [], False, False, False, True, tops=((0, "task", ("a", 4)),))
    point = trial.InterruptPoint(trial.InterruptKey(b"", (0, 1), 0, "task"), [], None)
    after = AfterInterrupt.of(out, 1, point)
    assert after.fits(None) and after.fits(("a", 2)) and not after.fits(("a", 4))
    back = AfterInterrupt.of(out, 1, trial.InterruptPoint(point.key, [], ("a", 4)))
    assert not back.fits(None) and not back.fits(("a", 2))


def test_a_call_taken_after_an_interrupt_keeps_its_own_earlier_warnings() -> None:
    """What the earlier call reported before its interrupt fired is its own;
    the call that takes its outcomes keeps what it reported itself there,
    and takes only what came after."""
    mine, theirs, after = Violation("mine"), Violation("theirs"), Violation("after")
    read = trial.Outcome(None, None, [theirs], False, False, True, False, digest=b"r")
    full = trial.Outcome(None, None, [theirs, after], False, False, False, True, digest=b"f")
    full.shorter = {3: read}
    point = trial.InterruptPoint(trial.InterruptKey(b"", (0, 1), 0, "task"), [theirs], None)
    out = AfterInterrupt.of(full, 3, point).at(5, [mine, mine])
    assert out.warnings == [mine, mine, after] and out.reused and out.machine is None
    assert out.shorter is not None and list(out.shorter) == [5]
    assert out.shorter[5].warnings == [mine, mine] and out.shorter[5].digest == b"r"


def test_the_state_cache_counts_every_interleaving_it_skips(pruned: Explorer) -> None:
    plain = _search("hugh-v1", SMALL, Pruning(cache=False, full_range=FULL_RANGE))
    assert plain.result.interleavings <= plain.result.executed  # it ran every one
    assert pruned.result.interleavings == plain.result.interleavings
    assert pruned.result.executed < plain.result.executed


# --- what it finds, and what it proves ------------------------------------------------


@pytest.fixture(scope="module")
def c2c() -> Explorer:
    return explore(DESIGNS["pre-c2c-5.16"], parse_bound(C2C_BOUND), setup=C2C_SETUP)


def test_the_c2c224932fd0_race_is_found_from_its_setup_shortest_first(c2c: Explorer) -> None:
    found = c2c.result.found["use-after-free"]
    # Between page_table_free's atomic_xor_bits and its list_del an interrupt
    # on the other CPU runs __tlb_remove_table there, which frees the page;
    # page_table_free goes on into the freed page. No preemption is needed.
    assert [s.rule for s in found.steps] == [
        "page_table_alloc",
        "page_table_alloc",
        "pte_free_tlb",
        "page_table_free",
    ]
    assert (found.cost.operations, found.cost.preemptions, found.cost.interrupts) == (4, 0, 1)
    assert dict(found.steps[-1].args)["irq"] > 0
    assert "list_del" in found.message and "use-after-free" in found.message


def test_upstream_64_is_proved_from_the_same_setup() -> None:
    explorer = explore(DESIGNS["upstream-6.4"], parse_bound(C2C_BOUND), setup=C2C_SETUP)
    assert explorer.result.complete and not explorer.result.found
    assert explorer.result.cell("use-after-free") == PROVED
    assert explorer.result.interleavings > 1000


def test_upstream_64_is_proved_within_a_small_bound() -> None:
    result = explore(
        DESIGNS["upstream-6.4"], parse_bound(f"S=2,C=1,P=1,I=1,tables=1,{LEAN}")
    ).result
    assert result.complete and not result.found
    assert result.scenarios > 10 and result.interleavings > 1000


def test_the_counterexample_is_a_replay_file(c2c: Explorer, tmp_path: Path) -> None:
    bound = parse_bound(C2C_BOUND)
    found = c2c.result.found["use-after-free"]
    again = replayed(DESIGNS["pre-c2c-5.16"], found, bound)
    assert again is not None
    violation, failure = again
    assert "__tlb_remove_table" in failure.diagram and "list_del" in failure.diagram
    path = save_replay(ReplayFile.of(failure, bound.machine_config()), tmp_path)
    check = check_replay(path, load_replay(path), DESIGNS["pre-c2c-5.16"])
    assert check.violation is not None and check.as_recorded
    fixed = check_replay(path, load_replay(path), DESIGNS["upstream-6.4"])
    assert fixed.violation is None


def test_the_same_bound_gives_the_same_search() -> None:
    first = explore(DESIGNS["hugh-v1"], parse_bound(SMALL)).result
    again = explore(DESIGNS["hugh-v1"], parse_bound(SMALL)).result
    counts = ("scenarios", "interleavings", "executed", "states")
    assert [getattr(first, c) for c in counts] == [getattr(again, c) for c in counts]
    assert {p: c.steps for p, c in first.found.items()} == {
        p: c.steps for p, c in again.found.items()
    }


def test_pytest_exhaustive_prints_proved_cells_and_their_counts() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_verdicts.py",
            "--exhaustive",
            "--bound",
            SMALL,
            "--design",
            "upstream-6.4",
            "-n",
            "0",
            "-q",
            "--progress",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = run.stdout[run.stdout.index("designs x properties") :]
    row = next(line for line in table.splitlines() if line.startswith("upstream-6.4"))
    assert row.count(PROVED) == 9 and "n/a" in row
    assert "proved ≤B: no violation in any interleaving" in table
    assert f"B = {parse_bound(SMALL)}\n" in table
    assert re.search(r"upstream-6.4: exhaustive ≤B: [\d,]+ scenarios, [\d,]+ interleavings", table)
