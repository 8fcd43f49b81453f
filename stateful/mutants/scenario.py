"""Does the unmutated design pass the scenario a mutant's violation happens in?

A mutant that breaks a property its design already breaks (a design's own
leak, say) is not killed by reaching that property somewhere: the design
reaches it too. It is killed when it breaks the property in a scenario the
design passes: the same atomic setup from boot, then the same operations,
where no interleaving of the design within the bound breaks it. That is a
violation the design does not reach, with a line to point at.

The check is one-sided, like a kill must be. The mutant's own rule calls are
replayed on the design first: a design that breaks the property there
settles it (not passed). Else the design is searched exhaustively from the
same setup, with the bound's concurrent operations, preemptions and
interrupts, but only operations of the names the scenario runs after its
setup (each on any object): more than the scenario, never less, so a
scenario said to pass passes in every one of its interleavings. A setup the
design cannot run atomically, or that ends in a violation, is not passed.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from attrs import define, field

from designs.base import Design
from stateful.exhaustive import trial
from stateful.exhaustive.bound import Bound
from stateful.exhaustive.result import Cost
from stateful.exhaustive.search import Explorer
from stateful.machine import machine_for
from stateful.replay import Step
from stateful.rules import rules_of

Scenario = tuple[tuple[Step, ...], frozenset[str]]


@define
class DesignPasses:
    """The design's verdict on the scenarios of a mutant's violations, each searched once."""

    design_cls: type[Design]
    bound: Bound
    replays: int = 0
    searches: int = 0
    executed: int = 0  # rule-call sequences the searches ran
    _searched: dict[tuple[Scenario, str], bool] = field(factory=dict)
    _machine_cls: type = field(init=False)
    _operations: frozenset[str] = field(init=False)

    def __attrs_post_init__(self) -> None:
        self._machine_cls = machine_for(self.design_cls, None, self.bound.machine_config())
        self._operations = frozenset(r.name for r in rules_of(self._machine_cls) if r.operation)

    def scenario(self, path: Sequence[Step], cost: Cost) -> Scenario:
        """The atomic setup (the first `cost.setup` calls: setup comes first) and
        the names of the operations after it."""
        setup = tuple(path[: cost.setup])
        return setup, frozenset(s.rule for s in path[cost.setup :] if s.rule in self._operations)

    def __call__(self, prop: str, path: Sequence[Step], cost: Cost, in_drain: bool) -> bool:
        """True when the design breaks `prop` in no interleaving of path's scenario."""
        if self._breaks_on(prop, path, in_drain):
            return False
        scenario = self.scenario(path, cost)
        key = (scenario, prop)
        if key not in self._searched:
            self._searched[key] = self._search(prop, *scenario)
        return self._searched[key]

    def _breaks_on(self, prop: str, path: Sequence[Step], in_drain: bool) -> bool:
        """Whether the design, on the mutant's own rule calls, breaks prop (or
        cannot run them: not a scenario it passes)."""
        self.replays += 1
        try:
            machine = trial.replay(self._machine_cls, path)
            if in_drain:
                machine.teardown()
        except Exception:  # noqa: BLE001 - a violation of its own first, or calls it cannot run
            return True
        return any(v.property == prop for v in machine.world.reports)

    def _search(self, prop: str, setup: tuple[Step, ...], operations: frozenset[str]) -> bool:
        self.searches += 1
        bound = attrs.evolve(self.bound, setup=len(setup))
        explorer = Explorer(
            self.design_cls,
            bound,
            stop_after=frozenset({prop}),
            operations=operations,
            setup=setup,
        )
        try:
            result = explorer.run()
        except Exception:  # noqa: BLE001 - a setup the design cannot run atomically
            return False
        finally:
            self.executed += explorer.result.executed
        return prop not in result.found
