"""Replaying a rule sequence exactly, and minimizing it.

A step is a rule name and its drawn arguments. The machine's arguments are
picks taken modulo what exists, so any subsequence of a failing run is
still a valid run: that is what lets `minimize` delete steps freely and
reach a sequence where every step is needed, in milliseconds, where
Hypothesis's generic shrinker needs minutes on the same failure.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from attrs import define
from hypothesis.errors import UnsatisfiedAssumption
from hypothesis.stateful import RULE_MARKER

from stateful import points
from stateful.violations import Violation


@define(frozen=True)
class Step:
    rule: str
    args: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, rule: str, args: dict[str, Any]) -> Step:
        return cls(rule, tuple(sorted(args.items())))

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.args)
        return f"state.{self.rule}({shown})"


@define
class Outcome:
    violation: Violation | None
    machine: Any
    skipped_at: list[int]  # the steps (1-based) whose precondition no longer held
    # A violation of a property the machine was not hunting: it ended the run
    # (the search discards such an example) before the hunted one could happen.
    other: Violation | None = None

    @property
    def skipped(self) -> int:
        return len(self.skipped_at)


def replay(machine_cls: type, steps: Sequence[Step]) -> Outcome:
    """Run `steps` on a fresh machine; a step whose precondition fails is skipped."""
    machine = machine_cls()
    skipped: list[int] = []
    try:
        for number, step in enumerate(steps, 1):
            fn = getattr(machine_cls, step.rule, None)
            spec = getattr(fn, RULE_MARKER, None)
            if spec is None:
                raise ValueError(f"no rule named {step.rule!r} in {machine_cls.__name__}")
            if not all(pre(machine) for pre in spec.preconditions):
                skipped.append(number)
                continue
            getattr(machine, step.rule)(**dict(step.args))
            machine.design_invariants()
        machine.teardown()
    except Violation as violation:
        return Outcome(violation, machine, skipped)
    except UnsatisfiedAssumption as discarded:
        other = discarded.__cause__ if isinstance(discarded.__cause__, Violation) else None
        return Outcome(None, machine, skipped, other)
    return Outcome(None, machine, skipped)


def _simpler_args(step: Step) -> list[Step]:
    """Each argument moved to each simpler value (smaller ints, False), one at a time."""
    out = []
    for i, (name, value) in enumerate(step.args):
        if isinstance(value, bool):
            simpler: list[Any] = [False] if value else []
        elif isinstance(value, int):
            simpler = list(range(value))
        else:
            simpler = []
        for simple in simpler:
            args = step.args[:i] + ((name, simple),) + step.args[i + 1 :]
            out.append(Step(step.rule, args))
    return out


class _Budget:
    """Replays left: a count, not a clock, so that minimizing is deterministic."""

    def __init__(self, replays: int) -> None:
        self.left = replays

    def spend(self) -> bool:
        self.left -= 1
        return self.left >= 0


def minimize(
    machine_cls: type, steps: Sequence[Step], prop: str, max_replays: int = 20_000
) -> list[Step]:
    """Delta-debug `steps` to a sequence that still violates `prop`, each step needed.

    Deleting chunks, then single steps, then simplifying arguments, repeated
    to a fixpoint; then each step is tried deleted together with one argument
    of a later step simplified, for the picks whose meaning the deleted step
    shifted (a pick counts from the most recently used object), or with one
    integer argument of another step raised; then the run is cut short with
    one argument raised, and each step tried deleted after another moved.
    """
    budget = _Budget(max_replays)

    def fails(candidate: Sequence[Step]) -> bool:
        if not candidate or not budget.spend():
            return False
        outcome = replay(machine_cls, candidate)
        return outcome.violation is not None and outcome.violation.property == prop

    current = list(steps)
    if not fails(current):
        return current
    changed = True
    while changed and budget.left > 0:
        changed = False
        chunk = max(len(current) // 2, 1)
        while chunk >= 1:
            i = 0
            while i < len(current):
                candidate = current[:i] + current[i + chunk :]
                if fails(candidate):
                    current, changed = candidate, True
                else:
                    i += chunk
            chunk //= 2
        for i in range(len(current)):
            for simpler in _simpler_args(current[i]):
                candidate = current[:i] + [simpler] + current[i + 1 :]
                if fails(candidate):
                    current[i], changed = simpler, True
                    break
        if not changed:
            repaired = (
                _delete_with_repair(current, fails)
                or _shorter_with_raise(current, fails)
                or _delete_after_move(current, fails)
            )
            if repaired is not None:
                current, changed = repaired, True
    return _drop_skipped(machine_cls, current, fails)


def _delete_with_repair(
    steps: list[Step], fails: Callable[[Sequence[Step]], bool]
) -> list[Step] | None:
    for i in range(len(steps)):
        rest = steps[:i] + steps[i + 1 :]
        for j in range(i, len(rest)):
            for simpler in _simpler_args(rest[j]):
                candidate = rest[:j] + [simpler] + rest[j + 1 :]
                if fails(candidate):
                    return candidate
    return None


def _shorter_with_raise(
    steps: list[Step], fails: Callable[[Sequence[Step]], bool]
) -> list[Step] | None:
    """Each step deleted, then the run cut after each step, together with one
    integer argument of a step kept raised: what one rule call did, another
    can often do with a larger argument (a `softirq` call after a pause
    becomes that step's interrupt), and a tail that finishes what an earlier
    step left half done (a paused operation and its resumes) can go once
    that step stops later."""
    deleted = (steps[:i] + steps[i + 1 :] for i in range(len(steps)))
    cut = (steps[:n] for n in range(len(steps) - 1, 0, -1))
    for kept in itertools.chain(deleted, cut):
        found = _with_one_raised(kept, fails)
        if found is not None:
            return found
    return None


def _with_one_raised(
    steps: list[Step], fails: Callable[[Sequence[Step]], bool]
) -> list[Step] | None:
    """The first of steps with one integer argument raised (up to points.LARGEST) that fails."""
    for j, step in enumerate(steps):
        for k, (name, value) in enumerate(step.args):
            if isinstance(value, bool) or not isinstance(value, int):
                continue
            for raised in range(value + 1, points.LARGEST + 1):
                args = step.args[:k] + ((name, raised),) + step.args[k + 1 :]
                candidate = [*steps[:j], Step(step.rule, args), *steps[j + 1 :]]
                if fails(candidate):
                    return candidate
    return None


def _delete_after_move(
    steps: list[Step], fails: Callable[[Sequence[Step]], bool]
) -> list[Step] | None:
    """Each step moved to each other place, where the run still fails and
    then some step can go or some argument be simpler (each result is
    shorter, or as long with smaller arguments, so minimizing ends): an
    operation started earlier can make a later pause, resume or second
    operation unnecessary."""
    for i in range(len(steps)):
        rest = steps[:i] + steps[i + 1 :]
        for j in range(len(steps)):
            if j == i:
                continue
            moved = [*rest[:j], steps[i], *rest[j:]]
            if not fails(moved):
                continue
            for k in range(len(moved)):
                candidate = moved[:k] + moved[k + 1 :]
                if fails(candidate):
                    return candidate
            for k, step in enumerate(moved):
                for simpler in _simpler_args(step):
                    candidate = [*moved[:k], simpler, *moved[k + 1 :]]
                    if fails(candidate):
                        return candidate
    return None


def _drop_skipped(
    machine_cls: type, steps: list[Step], fails: Callable[[Sequence[Step]], bool]
) -> list[Step]:
    """Steps whose precondition failed did nothing; leave them out of the record."""
    machine = machine_cls()
    kept = []
    try:
        for step in steps:
            spec = getattr(getattr(machine_cls, step.rule), RULE_MARKER)
            if all(pre(machine) for pre in spec.preconditions):
                kept.append(step)
                getattr(machine, step.rule)(**dict(step.args))
                machine.design_invariants()
    except (Violation, UnsatisfiedAssumption):
        pass
    return kept if fails(kept) else steps
