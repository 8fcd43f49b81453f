"""The random scheduler (stateful/scheduler.py): what it draws, and that a seed repeats a run."""

from __future__ import annotations

import random
from collections import Counter

from designs.registry import load_designs
from stateful.hunt import survey
from stateful.machine import SURVEY, machine_for
from stateful.replay import replay
from stateful.rules import rules_of
from stateful.scheduler import run_example
from tests.benchmark_helpers import load_benchmark
from tests.kernel_helpers import small_search

DESIGNS = load_designs()


def _machine(design: str) -> type:
    return machine_for(DESIGNS[design], None)


def test_a_seed_repeats_its_example_and_another_seed_differs() -> None:
    machine_cls = _machine("upstream-6.4")
    runs = [run_example(machine_cls, random.Random(seed), 30).steps for seed in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_every_call_drawn_met_its_precondition() -> None:
    """The recorded calls replay with none skipped: each rule ran where it could."""
    machine_cls = _machine("upstream-6.4")
    for seed in range(40):
        steps = run_example(machine_cls, random.Random(seed), 30).steps
        assert replay(machine_cls, steps).skipped_at == []


def test_arguments_are_drawn_with_their_strategy_weights() -> None:
    """PAUSE draws 0 in 36 of its 48 values: about three calls in four run atomically."""
    machine_cls = _machine("upstream-6.4")
    pauses: Counter[int] = Counter()
    for seed in range(60):
        for step in run_example(machine_cls, random.Random(seed), 40).steps:
            if step.rule != "softirq":
                pauses.update(v for k, v in step.args if k == "pause")
    drawn = next(a.drawn for r in rules_of(machine_cls) for a in r.args if a.name == "pause")
    assert set(pauses) <= set(drawn)
    share = pauses[0] / sum(pauses.values())
    assert 0.65 < share < 0.85, share


def test_swarm_switches_rules_off_for_whole_examples() -> None:
    """Some examples never call a rule that could run all along (a flush).
    Drawn among the eight or so rules that can run, a flush is missed by all
    40 calls of an example about once in 200 ((7/8)**40); with rules
    switched off per example, in about one example in six."""
    machine_cls = _machine("upstream-6.4")
    without = sum(
        all(
            s.rule != "tlb_flush_mm_lazy"
            for s in run_example(machine_cls, random.Random(n), 40).steps
        )
        for n in range(200)
    )
    assert 10 < without < 190, without


def test_a_derandomized_survey_repeats_itself() -> None:
    first, second = (survey(DESIGNS["hugh-v1"], small_search(200)) for _ in range(2))
    assert first.examples == second.examples == 200
    assert first.ended_by == second.ended_by
    assert {p: f.steps for p, f in first.first.items()} == {
        p: f.steps for p, f in second.first.items()
    }


def test_rule_coverage_counts_what_the_examples_called() -> None:
    """benchmarks/rule_coverage.py: its counts are the examples' own rule
    calls, and a trace text is counted where the trace shows it."""
    by_rule, by_trace = load_benchmark("rule_coverage").coverage(
        "hugh-v1", 5, 20, ["page_table_alloc(", "no such text"]
    )
    machine_cls = machine_for(load_designs()["hugh-v1"], SURVEY)
    runs = [run_example(machine_cls, random.Random(seed), 20) for seed in range(5)]
    assert sum(times for _, times, _ in by_rule) == sum(len(m.steps) for m in runs)
    allocs = sum(1 for m in runs for e in m.world.trace.events if "page_table_alloc(" in e.text)
    assert by_trace[0][1] == allocs > 0
    assert by_trace[1][1:] == (0, 0)
