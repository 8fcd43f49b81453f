"""The exhaustive search's benchmarks. benchmarks/exhaustive_redundancy.py:
its counts agree with the search's own, its sleep-set bound counts a
commuting pair once and nothing else, and its floor is the states whose
CPUs are idle. benchmarks/exhaustive_speed.py
--where-time: it times the search as the search runs; --without switches
one shortcut off and changes nothing else; --progress tells how a search
goes and changes nothing else."""

from __future__ import annotations

import re

import pytest

from designs.registry import load_designs
from stateful.exhaustive import parse_bound
from stateful.replay import Step
from tests.benchmark_helpers import load_benchmark

SMALL = "S=1,C=1,P=1,I=1,tables=1"


def _call(name: str) -> Step:
    return Step.of(name, {})


def test_a_commuting_pair_is_counted_once() -> None:
    a, b = _call("a"), _call("b")
    # From state 0: a leads to 1, b to 2; then b from 1 and a from 2 meet in 3.
    diamond = {0: [(a, 1), (b, 2)], 1: [(b, 3)], 2: [(a, 3)]}
    assert load_benchmark("exhaustive_redundancy")._commuting(diamond) == 1
    apart = {0: [(a, 1), (b, 2)], 1: [(b, 3)], 2: [(a, 4)]}
    assert load_benchmark("exhaustive_redundancy")._commuting(apart) == 0


def test_siblings_are_calls_to_a_state_an_earlier_sibling_reached() -> None:
    a, b, c = _call("a"), _call("b"), _call("c")
    bench = load_benchmark("exhaustive_redundancy")
    assert bench._siblings({0: [(a, 1), (b, 1), (c, 2)], 1: [(a, 2)]}) == 1


@pytest.mark.parametrize("design", ["pre-c2c-5.16", "hugh-v1"])
def test_the_counts_agree_with_the_search(design: str) -> None:
    bench = load_benchmark("exhaustive_redundancy")
    explorer = bench._Counted(load_designs()[design], parse_bound(SMALL))
    result = explorer.run()
    emitted = explorer.emitted
    new = sum(n for (_, outcome), n in emitted.items() if outcome == "new state")
    assert new == result.states - 1  # every state but boot, reached first once
    assert sum(emitted.values()) <= result.executed
    calls = sum(len(c) for c in explorer.edges.values())
    assert calls == sum(len(node.children) for node in explorer.nodes)
    assert 0 < bench._commuting(explorer.edges) < calls


def test_where_time_splits_a_search_as_the_search_runs_it(capsys: pytest.CaptureFixture) -> None:
    """benchmarks/exhaustive_speed.py --where-time wraps the search's own
    calls: the search it times runs the same rule calls as the plain one."""
    speed = load_benchmark("exhaustive_speed")
    plain = speed.explore(load_designs()["hugh-v1"], parse_bound(SMALL)).result
    speed.where_time("hugh-v1", SMALL)
    out = capsys.readouterr().out
    run = plain.executed - plain.read - plain.reused
    assert f"{plain.executed:,} rule calls: {run:,} run, " in out
    assert f"{plain.read:,} read on the way through a longer one, {plain.reused:,} taken" in out
    for part in ("replay from boot", "fingerprint", "drain (teardown)", "rule call run"):
        assert part in out
    # Each part is charged only its own time: none is negative, none counted twice.
    shares = [int(m) for m in re.findall(r"s +(-?\d+)%$", out, re.MULTILINE)]
    assert len(shares) == 5 and min(shares) >= 0 and 95 <= sum(shares) <= 105, shares


def test_a_table_row_without_a_shortcut_searches_the_same_without_it() -> None:
    """benchmarks/exhaustive_speed.py --without NAME: the row is the same
    search, with that shortcut off (it takes no call), and says its memory."""
    speed = load_benchmark("exhaustive_speed")
    bound = "S=2,C=1,P=1,I=1,tables=1"  # one where hugh-v1's search takes calls
    with_it, _, found = speed.whole("hugh-v1", bound)
    without, _, found_without = speed.whole("hugh-v1", bound, ("after_interrupt",))
    assert found == found_without
    assert "taken from an earlier call" in with_it
    assert "taken from an earlier call" not in without
    rule_calls = re.compile(r"\(([\d,]+) rule-call sequences run")
    assert rule_calls.findall(with_it) == rule_calls.findall(without)
    assert re.search(r"; peak \d[\d,]* MB$", without)


def test_a_table_row_with_progress_is_the_same_row_and_says_so_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """benchmarks/exhaustive_speed.py --table --progress SECONDS: lines on
    stderr as the search goes, with its memory; the row is the same."""
    speed = load_benchmark("exhaustive_speed")
    quiet, _, found = speed.whole("hugh-v1", SMALL)
    assert capsys.readouterr().err == ""
    told, _, found_told = speed.whole("hugh-v1", SMALL, (), 1e-9)
    lines = capsys.readouterr().err.splitlines()
    assert found == found_told
    counts = re.compile(r"\d[\d,]* scenarios, .*? states;")  # the time and rate left out
    assert counts.findall(quiet) == counts.findall(told) != []
    assert len(lines) > 1
    assert all(
        re.match(
            r"hugh-v1: exhaustive at (its end|\d+ operations?, \d+ preemptions?, "
            r"\d+ interrupts?, \d+ rule calls?): [\d,]+ run, .*; peak \d[\d,]* MB$",
            ln,
        )
        for ln in lines
    )
    with pytest.raises(SystemExit):
        speed.main(["--progress", "5"])  # a usage error: it applies to --table
    assert "--progress applies to --table" in capsys.readouterr().err


def test_the_states_with_nothing_in_flight_are_those_whose_cpus_are_idle() -> None:
    """The floor the benchmark prints: each node replayed, its CPUs read."""
    explorer = load_benchmark("exhaustive_redundancy")._Counted(
        load_designs()["hugh-v1"], parse_bound(SMALL)
    )
    explorer.run()
    idle = set()
    for node in explorer.nodes:
        machine = explorer._replay(node.path)
        if all(cpu.idle for cpu in machine.world.cpus):
            idle.add(node.digest)
    assert explorer.idle | {explorer.nodes[0].digest} == idle
    assert 1 < len(idle) < len({node.digest for node in explorer.nodes})


def test_a_table_row_over_some_operations_searches_only_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """benchmarks/exhaustive_speed.py --table --operation NAME: a positive
    control for one path. Without munmap, hugh-v1's list corruption (a
    pte_free_tlb after a fault) cannot happen; an unknown name is a usage error."""
    speed = load_benchmark("exhaustive_speed")
    _, _, every = speed.whole("hugh-v1", SMALL)
    _, _, faults = speed.whole("hugh-v1", SMALL, operations=frozenset({"page_table_alloc"}))
    assert "hugh-v1--list-corruption" in every and faults == {}
    with pytest.raises(SystemExit):
        speed.main(["--table", "--operation", "no_such_rule"])
    assert "invalid choice: 'no_such_rule'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        speed.main(["--operation", "page_table_alloc"])
    assert "--operation applies to --table" in capsys.readouterr().err
