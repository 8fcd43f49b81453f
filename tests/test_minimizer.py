"""The minimizer checked against the truth: the exhaustive mode's shortest counterexamples.

tests/golden/shortest.json holds, for every known bug, the length in rule
calls of the shortest counterexample the exhaustive mode finds at the
default bound; `python benchmarks/exhaustive_speed.py --table --jobs 2
--write-shortest tests/golden/shortest.json` writes it. The replay files in
replays/ are what the random survey found, minimized by stateful/replay.py.
A minimized failure may be shorter in rule calls than the exhaustive one
(the exhaustive order is fewest operations, then fewest preemptions: one
preemption can save a softirq call), never longer.
"""

from __future__ import annotations

import json

import pytest
from replay_helpers import DESIGNS, KNOWN, KNOWN_IDS, REPLAYS, ROOT

from stateful.machine import machine_for
from stateful.replay import minimize, replay
from stateful.replay_file import load_replay
from tests.kernel_helpers import step as _step

SHORTEST = ROOT / "tests" / "golden" / "shortest.json"
WRITE = (
    "python benchmarks/exhaustive_speed.py --table --jobs 2 "
    "--write-shortest tests/golden/shortest.json"
)


@pytest.mark.parametrize(("design", "prop"), KNOWN, ids=KNOWN_IDS)
def test_the_minimized_replay_is_no_longer_than_the_exhaustive_shortest(
    design: str, prop: str
) -> None:
    shortest = json.loads(SHORTEST.read_text())
    key = f"{design}--{prop}"
    assert key in shortest, f"no exhaustive length for {key}: {WRITE}"
    minimized = load_replay(REPLAYS / f"{key}.json").steps
    exhaustive = shortest[key]
    assert len(minimized) <= exhaustive["calls"], (
        f"the minimizer left {len(minimized)} rule calls where the exhaustive mode needs "
        f"{exhaustive['calls']} ({exhaustive['cost']}):\n" + "\n".join(f"  {s}" for s in minimized)
    )


ALLOC = _step("page_table_alloc", cpu=0, mm=0, pause=0, irq=0, vma=0, thp=False)


def test_a_softirq_after_a_pause_becomes_that_steps_interrupt() -> None:
    """hugh-v1's deadlock as a random search records it: the flush paused
    after taking the lock, then a softirq on its CPU. One rule call fewer:
    the interrupt arrives inside the flush itself."""
    steps = [
        ALLOC,
        ALLOC,
        _step("pte_free_defer", cpu=0, table=0, pause=0, irq=0),
        _step("tlb_flush_mm_lazy", cpu=0, mm=0, pause=1, irq=0),
        _step("softirq", which=0, pause=0),
    ]
    machine = machine_for(DESIGNS["hugh-v1"], "deadlock")
    assert replay(machine, steps).violation is not None
    minimal = minimize(machine, steps, "deadlock")
    assert [s.rule for s in minimal] == [
        "page_table_alloc",
        "page_table_alloc",
        "pte_free_defer",
        "tlb_flush_mm_lazy",
    ]
    assert dict(minimal[-1].args)["irq"] > 0
    outcome = replay(machine, minimal)
    assert outcome.violation is not None and outcome.violation.property == "deadlock"


# Steps a failing run can carry that its failure does not need: the
# minimizer must take them out again, down to the exhaustive length.
NOISE = (
    _step("tlb_flush_mm_lazy", cpu=0, mm=0, pause=0, irq=0),
    _step("mm_create", cpu=1, pgste=False, pause=0, irq=0),
)


@pytest.mark.parametrize(("design", "prop"), KNOWN, ids=KNOWN_IDS)
def test_a_padded_failure_is_minimized_to_the_exhaustive_length(design: str, prop: str) -> None:
    shortest = json.loads(SHORTEST.read_text())[f"{design}--{prop}"]
    recorded = load_replay(REPLAYS / f"{design}--{prop}.json")
    machine = machine_for(DESIGNS[design], prop, recorded.machine)
    for noise in NOISE:
        padded = [s for step in recorded.steps for s in (noise, step)]
        outcome = replay(machine, padded)
        if outcome.violation is not None and outcome.violation.property == prop:
            break
    else:
        pytest.fail(f"no padding of {design}--{prop} still fails: the noise is not neutral here")
    minimal = minimize(machine, padded, prop)
    assert len(minimal) <= shortest["calls"], "\n".join(f"  {s}" for s in minimal)


def test_a_tail_that_finishes_a_half_done_step_is_cut_with_that_step_raised() -> None:
    """hugh-hh's unstable mm as the random scheduler first recorded it: the
    softirq ran one step too few, so a second pte_free_defer paused and two
    resumes follow before the exit at teardown. Cut after the softirq, with
    its pause raised by one: the exhaustive length, 4."""
    defer = _step("pte_free_defer", cpu=0, table=0, pause=0, irq=0)
    resume = _step("resume", which=0, pause=0, irq=0)
    steps = [
        ALLOC,
        ALLOC,
        defer,
        _step("softirq", which=0, pause=1),
        _step("pte_free_defer", cpu=0, table=0, pause=7, irq=0),
        resume,
        resume,
    ]
    machine = machine_for(DESIGNS["hugh-hh"], "use-after-free")
    assert replay(machine, steps).violation is not None
    minimal = minimize(machine, steps, "use-after-free")
    assert minimal == [ALLOC, ALLOC, defer, _step("softirq", which=0, pause=2)]
