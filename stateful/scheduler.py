"""The random scheduler: each Hypothesis example is one seed, and the seed
drives a run of the machine's own rules.

Hypothesis runs the search (profiles, seeds, `derandomize`, the example
database, the count of examples); what one example does is drawn here, from
a `random.Random` that Hypothesis seeds (`st.randoms(use_true_random=True)`),
over the same rules, preconditions and argument strategies that Hypothesis's
rule-based generation reads (stateful/machine.py). Each step picks a rule
uniformly among those whose precondition holds, and each argument uniformly
among its strategy's values, repeats included (a `sampled_from` with 36
zeros in 48 draws 0 three times in four). Swarm testing as Hypothesis does
it: per example, a drawn share of the rules is switched off, so some
examples never exit, never flush, never start a softirq by itself; when
none of the rules left can run, any rule that can runs.

Why not Hypothesis's own generation: in a profile of 500 examples of
pre-c2c-5.16 under it, drawing the rules and their arguments took 8.9 s
against 4.7 s for running them; over 1,000 examples, they averaged 17 of
their 40 steps, most of them mutations of earlier examples. benchmarks/find_speed.py
compares the two (`--generator hypothesis`): over the same seeds,
Hypothesis's generation needed 3 to 15 times the examples, and 10 to 45
times the seconds, to find the same bug (docs/exhaustive.md).

Nothing is lost: a failure is the machine's own record of its rule calls
(`machine.steps`), which pgfrag minimizes and saves as a replay file, as
before; the same seed runs the same example.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache
from typing import Any

from hypothesis import given
from hypothesis import settings as Settings
from hypothesis import strategies as st

from stateful.rules import Rule, rules_of


@cache
def _rules(machine_cls: type) -> tuple[Rule, ...]:
    return rules_of(machine_cls)


def run_example(machine_cls: type, rnd: random.Random, steps: int) -> Any:
    """One example: up to `steps` rule calls drawn from rnd, then teardown;
    the machine it ran."""
    rules = _rules(machine_cls)
    machine = machine_cls()
    off = rnd.random()
    enabled = [r for r in rules if rnd.random() >= off] or list(rules)
    try:
        machine.design_invariants()
        for _ in range(steps):
            if machine.ended:
                break
            valid = [r for r in enabled if r.enabled(machine)]
            if not valid:
                valid = [r for r in rules if r.enabled(machine)]
                if not valid:
                    break
            rule = rnd.choice(valid)
            getattr(machine, rule.name)(**{a.name: rnd.choice(a.drawn) for a in rule.args})
            machine.design_invariants()
    finally:
        machine.teardown()
    return machine


def search(machine_cls: type, settings: Settings) -> None:
    """Run `settings.max_examples` examples of machine_cls under Hypothesis.

    A violation the machine raises fails the search as a Hypothesis test
    fails, after Hypothesis's phases (the database keeps the seed)."""
    steps = settings.stateful_step_count

    @settings
    @given(rnd=st.randoms(use_true_random=True))
    def random_schedule(rnd: random.Random) -> None:
        run_example(machine_cls, rnd, steps)

    _key_by_machine(random_schedule, machine_cls)
    random_schedule()


def _key_by_machine(test: Callable[..., None], machine_cls: type) -> None:
    """The example database keys a test by its function; one function serves
    every machine here, so add the machine's name, as Hypothesis's own
    run_state_machine_as_test adds its machine's digest."""
    design = getattr(machine_cls, "design_cls", None)
    name = repr(
        (
            machine_cls.__qualname__,
            getattr(design, "name", None),
            getattr(machine_cls, "target", None),
        )
    )
    inner = test.hypothesis.inner_test  # type: ignore[attr-defined]
    inner._hypothesis_internal_add_digest = name.encode()
