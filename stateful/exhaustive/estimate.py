"""How large a bound is, said before the search runs.

The estimate counts the operation calls a design offers at boot (each rule
with each distinct pick and flag value), b, and takes the scenarios as the
operation sequences of at most S + C of them: 1 + b + ... + b^(S+C); and
the rule-call sequences the search runs as that times (STEPS + 1)^P 2^I:
each preemption falls after one of an operation's steps, each interrupt
comes or not. It over-counts scenarios (later operations may be fewer than
at boot; states that meet again are explored once) and under-counts what a
scenario's interleavings cost. At every bound measured it over-counts what
the search runs: by 2.4x to 26x for upstream-6.4 (OVER_COUNT; the README,
"The default bound has no margin"), most with a second preemption. A
guard against a bound plainly out of reach, not a prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import define

from designs.base import Design
from stateful.exhaustive.bound import Bound
from stateful.exhaustive.result import Cost
from stateful.exhaustive.rules import Pick, pick_domain
from stateful.exhaustive.search import Explorer, Node, Pruning

# The steps of a typical operation: where a preemption can fall (measured:
# 10 to 24 at the bounds of benchmarks/exhaustive_speed.py).
STEPS = 16
# Rule-call sequences a second, on one core: measured alone at the default
# bound, 1,588 to 2,176 per design (the README's whole table, at 65d2cda),
# rounded down for a machine doing something else too.
RATE = 1_500
# Above this many estimated rule-call sequences for the run (about four
# hours of one core), --exhaustive asks for --bound-confirm.
LIMIT = 20_000_000
# What the estimate was over what the search ran, at the bounds measured
# (upstream-6.4, benchmarks/exhaustive_speed.py --table): the least and the most.
OVER_COUNT = (2.4, 25.7)


@define(frozen=True)
class Estimate:
    design: str
    calls_at_boot: int
    operations: int
    preemptions: int
    interrupts: int

    @property
    def scenarios(self) -> int:
        b, n = self.calls_at_boot, self.operations
        return sum(b**k for k in range(n + 1))

    @property
    def runs(self) -> int:
        return self.scenarios * (STEPS + 1) ** self.preemptions * 2**self.interrupts

    @property
    def hours(self) -> float:
        """Of one core, at RATE."""
        return self.runs / RATE / 3600


def calls_at_boot(design_cls: type[Design], bound: Bound) -> int:
    """The distinct operation calls the design's machine offers at boot."""
    explorer = Explorer(design_cls, bound, Pruning())
    root = explorer._replay(())
    node = Node((), Cost(), b"", 1, ())
    total = 0
    for rule in explorer.rules:
        if not rule.operation or not rule.enabled(root):
            continue
        picks = [a for a in rule.args if a.kind == "pick"]
        moduli = {a.name: set[int]() for a in picks}
        raw = {a.name: [False] for a in picks}
        args = {a.name: Pick(0, moduli[a.name], raw[a.name]) for a in picks}
        args |= {a.name: False if a.kind == "flag" else 0 for a in rule.args if a.kind != "pick"}
        explorer._trial(node, rule, args)
        count = 1
        for a in picks:
            count *= len(pick_domain(a, moduli[a.name], raw[a.name][0]))
        for a in rule.args:
            if a.kind == "flag":
                count *= len([v for v in a.values if bound.allows(a.name, v)])
        total += count
    return total


def estimate(design_cls: type[Design], bound: Bound) -> Estimate:
    return Estimate(
        design_cls.name,
        calls_at_boot(design_cls, bound),
        bound.operations,
        bound.preemptions,
        bound.interrupts,
    )


def too_large(designs: Sequence[type[Design]], bound: Bound, limit: int = LIMIT) -> str | None:
    """Why the bound is refused, or None."""
    estimates = [estimate(d, bound) for d in designs]
    runs = sum(e.runs for e in estimates)
    if runs <= limit:
        return None
    widest = max(estimates, key=lambda e: e.runs)
    hours = sum(e.hours for e in estimates)
    return (
        f"--bound {bound} is estimated at {sum(e.scenarios for e in estimates):,} scenarios "
        f"and about {runs:,} rule-call sequences to run for {len(estimates)} designs, about "
        f"{hours:,.0f} hours of one core (the most: {widest.design}, "
        f"{widest.calls_at_boot} operation calls at boot, up to {widest.operations} "
        f"operations); the limit is {limit:,}. The estimate over-counts: it was "
        f"{OVER_COUNT[0]}x to {OVER_COUNT[1]}x what the search ran at the bounds measured"
    )
