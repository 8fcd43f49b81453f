"""stateful/exhaustive/shard.py: a search split into shards reaches what the
whole search reaches, and finds each property's shortest counterexample."""

from __future__ import annotations

import attrs
import pytest

from designs.registry import load_designs
from stateful.exhaustive import explore, parse_bound
from stateful.exhaustive.result import Cost, Counterexample, Result
from stateful.exhaustive.search import Explorer
from stateful.exhaustive.shard import merge, shards

SMALL = "S=2,C=1,P=1,I=1,tables=1"
TWO = "S=2,C=2,P=0,I=0,tables=2"
# (design, bound, depth, whether the bound reaches a violation of the design)
CASES = [
    ("pre-c2c-5.16", "S=3,C=1,P=0,I=1", 1, True),  # c2c224932fd0 race
    ("hugh-v1", SMALL, 2, True),
    ("upstream-6.4", SMALL, 2, False),
    ("pre-c2c-5.16", TWO, 2, False),
    ("hugh-v1", TWO, 1, True),
    ("upstream-6.4", TWO, 1, False),
]


def _sharded(design: str, bound: str, depth: int) -> tuple[list[Explorer], Result]:
    cls = load_designs()[design]
    parts, prefix = shards(cls, parse_bound(bound), depth)
    return [explore(cls, s.bound, setup=s.setup) for s in parts], prefix


@pytest.mark.parametrize(("design", "bound", "depth", "violated"), CASES)
def test_the_shards_reach_the_whole_search(
    design: str, bound: str, depth: int, violated: bool
) -> None:
    whole = explore(load_designs()[design], parse_bound(bound))
    explorers, prefix = _sharded(design, bound, depth)
    assert len(explorers) > 1
    assert set().union(*(e.states for e in explorers)) == whole.states
    assert set().union(*(e.violations for e in explorers)) == whole.violations
    merged = merge(design, parse_bound(bound), [prefix, *(e.result for e in explorers)])
    assert merged.complete
    assert set(merged.found) == set(whole.result.found)
    assert bool(whole.result.found) == violated
    for prop, found in whole.result.found.items():
        assert merged.found[prop].cost.order == found.cost.order
        assert merged.found[prop].in_drain == found.in_drain
    assert merged.executed >= whole.result.executed


def _found(order: tuple[int, int, int, int], setup: int = 0) -> Counterexample:
    operations, preemptions, interrupts, calls = order
    cost = Cost(setup, operations - setup, preemptions, interrupts, calls)
    return Counterexample("leak", (), cost, "leak", False, 0.0, 0)


def test_merge_keeps_the_shortest_first_order_not_the_fewest_calls() -> None:
    bound = parse_bound(SMALL)
    fewer_calls = Result("d", bound, complete=True, found={"leak": _found((2, 1, 0, 3))})
    shorter = Result("d", bound, complete=True, found={"leak": _found((2, 0, 0, 5))})
    assert merge("d", bound, [fewer_calls, shorter]).found["leak"].cost.calls == 5
    # A tie: the longer setup, as the whole search counts it.
    ties = [Result("d", bound, found={"leak": _found((2, 0, 0, 2), setup=s)}) for s in (1, 2)]
    merged = merge("d", bound, ties)
    assert merged.found["leak"].cost.setup == 2
    assert not merged.complete


def test_a_shard_below_the_depth_takes_no_further_setup_operation() -> None:
    bound = parse_bound("S=2,C=1,P=1,I=1,tables=1")
    parts, _ = shards(load_designs()["upstream-6.4"], bound, 2)
    assert {len(s.setup) for s in parts} == {0, 1, 2}
    for s in parts:
        assert s.bound == (bound if len(s.setup) == 2 else attrs.evolve(bound, setup=len(s.setup)))
