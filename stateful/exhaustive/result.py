"""What an exhaustive search found, and the words it is reported in.

Per property: the first counterexample in the search order (fewest
operations, then preemptions, then interrupts, then rule calls), or none;
and for the whole search the counts that say what "proved" rests on:
scenarios (distinct operation sequences), interleavings (distinct rule-call
sequences covered: run, or reaching a state already explored with the same
budget left), rule calls run (some read on the way through a longer call
rather than run on their own), and distinct states.
"""

from __future__ import annotations

from attrs import define, field

from stateful.exhaustive.bound import Bound
from stateful.replay import Step

FOUND = "FOUND"
PROVED = "proved ≤B"


@define(frozen=True)
class Cost:
    """Where a rule-call sequence stands against the bound."""

    setup: int = 0
    concurrent: int = 0
    preemptions: int = 0
    interrupts: int = 0
    calls: int = 0

    @property
    def operations(self) -> int:
        return self.setup + self.concurrent

    @property
    def order(self) -> tuple[int, int, int, int]:
        """Shortest first: fewest operations, then preemptions, interrupts, rule calls."""
        return (self.operations, self.preemptions, self.interrupts, self.calls)

    @property
    def in_setup(self) -> bool:
        """Only atomic operations from boot so far."""
        return self.calls == self.setup

    def within(self, bound: Bound) -> bool:
        return (
            self.setup <= bound.setup
            and self.concurrent <= bound.concurrent
            and self.preemptions <= bound.preemptions
            and self.interrupts <= bound.interrupts
        )

    def __str__(self) -> str:
        return (
            f"{self.calls} rule calls: S={self.setup} C={self.concurrent} "
            f"P={self.preemptions} I={self.interrupts}"
        )


@define
class Counterexample:
    property: str
    steps: tuple[Step, ...]
    cost: Cost
    message: str  # the violation's first line, as the kernel checker words it
    in_drain: bool  # it happened in the teardown drain after the last rule call
    seconds: float  # since the search began, when it was first found
    interleavings: int  # rule calls run by then

    def describe(self) -> str:
        drain = " + teardown drain" if self.in_drain else ""
        return (
            f"{self.property}: {self.cost}{drain}; found after {self.seconds:.2f} s, "
            f"{self.interleavings:,} rule-call sequences run"
        )


@define
class Result:
    design: str
    bound: Bound
    scenarios: int = 0
    interleavings: int = 0
    executed: int = 0
    # Of those, the calls whose outcome was read on the way through a longer
    # call (a pause of it), not run on their own (Pruning.read_pauses).
    read: int = 0
    # And those whose outcome is that of an earlier call whose interrupt
    # fired in the same state (Pruning.after_interrupt).
    reused: int = 0
    states: int = 0
    seconds: float = 0.0
    complete: bool = False  # False: stopped once what it was asked to find was found
    found: dict[str, Counterexample] = field(factory=dict)

    def cell(self, prop: str) -> str:
        if prop in self.found:
            return FOUND
        return PROVED if self.complete else "-"

    @property
    def rate(self) -> float:
        return self.executed / self.seconds if self.seconds else 0.0

    @property
    def covered_per_run(self) -> float:
        """Interleavings covered per rule-call sequence run: what the pruning saves."""
        return self.interleavings / self.executed if self.executed else 0.0

    def counts(self) -> str:
        return (
            f"{self.scenarios:,} scenarios, {self.interleavings:,} interleavings "
            f"({self.executed:,} rule-call sequences run, {self.covered_per_run:.1f} "
            f"interleavings each{self._read()}; {self.states:,} states; {self.seconds:.1f} s, "
            f"{self.rate:,.0f} runs/s)"
        )

    def _read(self) -> str:
        parts = []
        if self.read:
            parts.append(f"{self.read:,} of them read on the way through a longer one")
        if self.reused:
            parts.append(
                f"{self.reused:,} taken from an earlier call whose interrupt fired "
                "in the same state"
            )
        return "".join(", " + part for part in parts)

    def summary(self) -> str:
        head = "proved ≤B" if self.complete and not self.found else "explored ≤B"
        if not self.complete:
            head = "stopped early"
        found = "; found: " + ", ".join(sorted(self.found)) if self.found else ""
        return f"{head}: {self.counts()}{found}"
