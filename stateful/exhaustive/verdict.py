"""A property's verdict from an exhaustive search, as the verdict tests raise it.

A counterexample is a rule-call sequence: it is replayed on a machine that
hunts only its property, with the trace on, which records the race diagram
(and the Failure the verdict tests save as a replay file), then raised as
the property's own exception. No counterexample in a complete search is
"proved ≤B": nothing to raise.
"""

from __future__ import annotations

from designs.base import Design
from stateful.exhaustive.bound import Bound
from stateful.exhaustive.result import Counterexample, Result
from stateful.hunt import explain
from stateful.machine import FAILURES, Failure, machine_for
from stateful.replay import replay
from stateful.violations import PROPERTIES, Violation


def replayed(
    design_cls: type[Design], found: Counterexample, bound: Bound
) -> tuple[Violation, Failure] | None:
    """The counterexample run again, traced; None if it does not end in its violation."""
    machine = machine_for(design_cls, found.property, bound.machine_config())
    outcome = replay(machine, found.steps)
    if outcome.violation is None or outcome.violation.property != found.property:
        return None
    if outcome.skipped:
        return None
    return outcome.violation, FAILURES[(design_cls.name, found.property)]


def verdict(design_cls: type[Design], prop: str, result: Result) -> None:
    """Raise `prop`'s exception with the shortest counterexample, if the search found one."""
    found = result.found.get(prop)
    if found is None:
        return
    again = replayed(design_cls, found, result.bound)
    steps = "\n".join(f"  {s}" for s in found.steps)
    if again is None:
        raise PROPERTIES[prop](
            f"{found.message}\n\n(the exhaustive search saw it, but its rule calls do not "
            f"reproduce it on replay: the model is not deterministic)\n\n{steps}"
        )
    violation, failure = again
    raise type(violation)(
        f"{violation}\n\nshortest within bound {result.bound}: {found.describe()}\n\n"
        f"{explain(failure)}"
    )
