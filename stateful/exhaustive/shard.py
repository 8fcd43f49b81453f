"""One design's bounded search split into independent parts, for several processes or hosts.

Every rule-call sequence within the bound begins with j <= S setup
operations, each run atomically from boot. A shard is a state those first
operations reach, searched on its own with them as its setup (Explorer's
`setup`): the states after the first `depth` setup operations, each
searched within the whole bound; and for the sequences with fewer, j <
depth, the state after the j, searched with S = j (no further setup
operation). Two setups that reach the same state are one shard: the same
state has the same futures, which is what the state cache already rests on.

The shards cover every sequence within the bound. They overlap a little:
a shard with S = j also runs, as a concurrent operation, an operation that
runs atomically, which a deeper shard runs as a setup one; and a state one
shard reaches is explored again if another reaches it too (a shard has its
own cache). Each shard's search is shortest first, so the shortest
counterexample of a property is the shortest over the shards: `merge`
takes it (a tie goes to the one with the longer setup, as one whole search
counts an atomic operation from boot as setup while it may).

`merge` adds the shards' counts: a state or scenario reached in two shards
counts twice there, so the counts are the work done, not the state space.
tests/test_shard.py shows on small bounds that the shards reach exactly the
whole search's states and violations, and the same shortest counterexample
lengths.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
from attrs import define

from designs.base import Design
from stateful.exhaustive.bound import Bound
from stateful.exhaustive.result import Counterexample, Result
from stateful.exhaustive.search import explore
from stateful.replay import Step


@define(frozen=True)
class Shard:
    setup: tuple[Step, ...]  # run atomically from boot, one after another
    bound: Bound  # the whole bound, or S = len(setup) for a shard below the depth

    def describe(self) -> str:
        steps = "; ".join(str(s) for s in self.setup) or "boot"
        return f"S={self.bound.setup} from {steps}"


def shards(design_cls: type[Design], bound: Bound, depth: int) -> tuple[list[Shard], Result]:
    """The shards of design_cls's search within bound, split at `depth` setup
    operations, and the result of the search that found their setups (a
    violation inside a setup operation is found there, and only there, when
    the bound has no concurrent operation to run it as): merge it too."""
    depth = min(depth, bound.setup)
    prefix = explore(
        design_cls, attrs.evolve(bound, setup=depth, concurrent=0, preemptions=0, interrupts=0)
    )
    # The nodes of that search are the states its atomic operations reach,
    # one per state and cost: each with the shortest setup to it.
    by_depth: dict[int, dict[bytes, tuple[Step, ...]]] = {}
    for node in prefix.nodes:
        if node.cost.in_setup:
            by_depth.setdefault(node.cost.setup, {}).setdefault(node.digest, node.path)
    out = []
    for j in range(depth + 1):
        below = bound if j == depth else attrs.evolve(bound, setup=j)
        out.extend(Shard(path, below) for path in by_depth.get(j, {}).values())
    return out, prefix.result


def search(design_cls: type[Design], shard: Shard) -> Result:
    return explore(design_cls, shard.bound, setup=shard.setup).result


def merge(design: str, bound: Bound, parts: Iterable[Result]) -> Result:
    """The result of the whole search within bound, from its shards' results."""
    merged = Result(design, bound, complete=True)
    for part in parts:
        merged.scenarios += part.scenarios
        merged.interleavings += part.interleavings
        merged.executed += part.executed
        merged.read += part.read
        merged.reused += part.reused
        merged.states += part.states
        merged.seconds += part.seconds
        merged.complete &= part.complete
        for prop, found in part.found.items():
            held = merged.found.get(prop)
            if held is None or _rank(found) < _rank(held):
                merged.found[prop] = found
    return merged


def counts(merged: Result, shards: int, largest: int) -> str:
    """The work a merged search's shards did: a state two shards reach counts twice."""
    return (
        f"{shards} shards: {merged.executed:,} rule-call sequences run (the largest shard "
        f"{largest:,}), {merged.states:,} states summed over the shards; "
        f"{merged.seconds:.1f} s of search"
    )


def _rank(found: Counterexample) -> tuple[object, ...]:
    return (found.cost.order, found.in_drain, -found.cost.setup)
