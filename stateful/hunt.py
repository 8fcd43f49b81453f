"""Hunting the properties of one design: Hypothesis searches, pgfrag minimizes.

`survey` runs one Hypothesis search over a design in which every example
runs until its first violation, which is recorded (the shortest sequence
per property) and ends that example; the search goes on, so one run hunts
every property. `verdict` then takes one property: if the survey saw it,
the recorded sequence is delta-debugged by `replay.minimize` on a machine
hunting only that property, replayed once more to record its race diagram,
and raised as the property's own exception with that diagram.

`hunt` is the single-property search (other fatal violations discard the
example), for when one property is masked by another in the survey.
"""

from __future__ import annotations

from hypothesis import settings as Settings

from designs.base import Design
from stateful.machine import (
    FAILURES,
    SURVEY,
    SURVEYS,
    Failure,
    MachineConfig,
    Survey,
    machine_for,
)
from stateful.progress import PROGRESS
from stateful.replay import Step, minimize, replay
from stateful.scheduler import search
from stateful.violations import PROPERTIES, Violation


def explain(failure: Failure) -> str:
    steps = "\n".join(f"  {s}" for s in failure.steps)
    return (
        f"{failure.design}: {failure.property}, minimal interleaving "
        f"({len(failure.steps)} rules)\n\n{failure.diagram}\n\nreplay (rule calls):\n{steps}"
    )


def survey(
    design_cls: type[Design], settings: Settings, config: MachineConfig | None = None
) -> Survey:
    SURVEYS.pop(design_cls.name, None)
    machine = machine_for(design_cls, SURVEY, config)
    PROGRESS.begin(design_cls.name, settings.max_examples)
    search(machine, settings)
    found = SURVEYS.get(design_cls.name, Survey(design_cls.name))
    PROGRESS.end(found.examples, found.ended_by)
    return found


def minimal_failure(
    design_cls: type[Design], prop: str, steps: list[Step], config: MachineConfig | None = None
) -> tuple[Violation, Failure] | None:
    """Minimize a failing sequence for `prop` and replay it; None if it does not fail."""
    machine = machine_for(design_cls, prop, config)
    minimal = minimize(machine, steps, prop)
    outcome = replay(machine, minimal)
    if outcome.violation is None or outcome.violation.property != prop:
        return None
    return outcome.violation, FAILURES[(design_cls.name, prop)]


def verdict(
    design_cls: type[Design],
    prop: str,
    found: Survey,
    config: MachineConfig | None = None,
) -> None:
    """Raise `prop`'s exception, with the minimal race diagram, if the survey found it."""
    failure = found.first.get(prop)
    if failure is None:
        return
    result = minimal_failure(design_cls, prop, failure.steps, config)
    if result is None:
        raise PROPERTIES[prop](
            f"{failure.message}\n\n(not reproduced on replay; as first seen)\n\n{explain(failure)}"
        )
    violation, minimal = result
    raise type(violation)(f"{violation}\n\n{explain(minimal)}")


def hunt(
    design_cls: type[Design],
    prop: str,
    settings: Settings,
    config: MachineConfig | None = None,
) -> None:
    """Search for `prop` alone; raise its exception with the minimal diagram if found."""
    machine = machine_for(design_cls, prop, config)
    try:
        search(machine, settings)
    except Violation as found:
        failure = FAILURES.get((design_cls.name, prop))
        if failure is None or found.property != prop:
            raise
        result = minimal_failure(design_cls, prop, failure.steps, config)
        if result is None:
            raise
        violation, minimal = result
        raise type(violation)(f"{violation}\n\n{explain(minimal)}") from found
