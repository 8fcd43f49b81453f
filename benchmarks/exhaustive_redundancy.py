"""Where the exhaustive search's rule calls go, and what a sleep set could save.

    python benchmarks/exhaustive_redundancy.py --design upstream-6.4 --bound S=3

The search tries every rule call at every state it explores; a call whose
state was reached before is counted, not explored again, but it was run
(replayed from boot, called and fingerprinted) to learn that. This splits
the rule calls run by the kind of call (an operation started, `resume`,
`softirq`; with an interrupt or not; with a pause or to its end) and by
what the call led to: a state never reached before, a state already
reached, the same state (the call changed nothing), or a violation.

It then measures the most a sleep set could save, on the search's own
graph, with the graph itself as the independence oracle: at a state s,
two calls A (tried first) and B commute when A then B and B then A both
lead from s to one state. A sleep set would skip A after B; each such
call is counted once. That is an upper bound for sleep sets one level
deep: a real sleep set needs a dependency relation declared in advance,
which can only be more cautious than the graph. (Sleep sets carried
further down can skip more, but only calls of the same kind: two calls
that commute.) It also counts the calls that reach the same state as an
earlier call from the same state (siblings), which no sleep set skips: the
two calls are not the same call in another order.

Last, the floor under any reduction that keeps every interleaving's end
state (DPOR and sleep sets included): the states with nothing in flight.
Each is where some execution within the bound ends (its operations done),
and its teardown drain is where leaks show, so such a reduction must still
reach each one. The other states it may skip, if it finds a way round them.

Rule calls are counted, not timed: the figures do not depend on the load.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from typing import Any

from attrs import define, field

from designs.registry import load_designs
from stateful.exhaustive import DEFAULT_BOUND, parse_bound
from stateful.exhaustive.search import Explorer, Node
from stateful.replay import Step
from stateful.rules import PAUSE, Rule

OUTCOMES = ("new state", "known state", "unchanged", "violation")


@define
class _Counted(Explorer):
    """The search, recording the kind and outcome of every rule call it emits,
    and its graph: for each state explored, the calls tried and where each led."""

    emitted: Counter[tuple[str, str]] = field(factory=Counter)
    edges: dict[int, list[tuple[Step, int]]] = field(factory=lambda: defaultdict(list))
    # The states reached with every CPU idle: nothing in flight.
    idle: set[bytes] = field(factory=set)

    def _number(self, node: Node) -> int:
        return self.index[self.cache_key(node)]

    def _emit(
        self, node: Node, rule: Rule, args: dict[str, Any], out: Any, interrupted: bool
    ) -> None:
        if out.fatal is not None:
            outcome = "violation"
        elif out.digest == node.digest:
            outcome = "unchanged"
        else:
            outcome = "known state" if out.digest in self.states else "new state"
        children, ends = len(node.children), node.ends
        super()._emit(node, rule, args, out, interrupted)
        if (len(node.children), node.ends) == (children, ends):
            return  # past the bound: not a call of the search
        self.emitted[(_kind(rule, args), outcome)] += 1
        if out.quiescent and outcome in ("new state", "known state"):
            self.idle.add(out.digest)
        if len(node.children) > children:
            step = Step.of(rule.name, {k: int(v) for k, v in args.items()})
            self.edges[self._number(node)].append((step, node.children[-1]))


def _kind(rule: Rule, args: dict[str, Any]) -> str:
    name = rule.name if rule.name in ("resume", "softirq") else "operation"
    irq = " + interrupt" if int(args.get("irq", 0) or 0) else ""
    pause = ", paused" if int(args.get(PAUSE, 0) or 0) else ", to its end"
    return name + irq + pause


def _commuting(edges: dict[int, list[tuple[Step, int]]]) -> int:
    """Calls a one-level sleep set could skip, the graph being the oracle."""
    skipped = 0
    for calls in edges.values():
        after = {child: dict(edges.get(child, ())) for _, child in calls}
        for i, (a, to_a) in enumerate(calls):
            for b, to_b in calls[i + 1 :]:
                via_a, via_b = after[to_a].get(b), after[to_b].get(a)
                skipped += via_a is not None and via_a == via_b
    return skipped


def _siblings(edges: dict[int, list[tuple[Step, int]]]) -> int:
    """Calls that reach the same state as an earlier call from the same state."""
    return sum(len(calls) - len({child for _, child in calls}) for calls in edges.values())


def redundancy(design: str, bound: str) -> None:
    explorer = _Counted(load_designs()[design], parse_bound(bound))
    r = explorer.run()
    print(f"{design} at {r.bound}: {r.executed:,} rule calls run, {r.states:,} states")
    kinds = Counter[str]()
    for (kind, _), n in explorer.emitted.items():
        kinds[kind] += n
    print(f"  {'rule call':<34} {'run':>8}  " + "  ".join(f"{o:>11}" for o in OUTCOMES))
    for kind, n in kinds.most_common():
        cells = "  ".join(f"{explorer.emitted[(kind, o)]:>11,}" for o in OUTCOMES)
        print(f"  {kind:<34} {n:>8,}  {cells}")
    emitted = sum(kinds.values())
    print(
        f"  emitted {emitted:,}; the other {r.executed - emitted:,} were the search's probes "
        "(a pause or an interrupt that did not fall, or past the bound)"
    )
    calls = sum(len(c) for c in explorer.edges.values())
    commuting, siblings = _commuting(explorer.edges), _siblings(explorer.edges)
    print(
        f"  calls to a state: {calls:,}; a one-level sleep set could skip at most "
        f"{commuting:,} ({100 * commuting / r.executed:.1f}% of the rule calls run); "
        f"{siblings:,} reach the state an earlier call from the same state reached"
    )
    idle = len(explorer.idle | {explorer.nodes[0].digest})
    print(
        f"  states with nothing in flight: {idle:,} of {r.states:,} "
        f"({100 * idle / r.states:.0f}%), which any reduction that keeps every end state must reach"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bound", default=str(DEFAULT_BOUND).replace(" ", ","))
    parser.add_argument("--design", action="append", default=[])
    args = parser.parse_args(argv)
    for design in args.design or ["upstream-6.4"]:
        redundancy(design, args.bound)
    return 0


if __name__ == "__main__":
    sys.exit(main())
