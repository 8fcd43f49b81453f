"""The design's rule calls, kept so that a mutant's search can take them instead of running them.

A mutant differs from its design only in its changed method. At a node of
the mutant's search that is also a node of the design's (same fingerprint,
same budget left: the same state, and none of the changed method in flight,
whose frames have their own name), a rule call that ran no statement of
that method in the design's search runs the same steps in the mutant: the
same violation, warnings and switches, and the same state after it. It
cannot leave the changed method in flight either: a generator that starts
runs its first statement, which is counted. So the mutant's search takes
the call's outcome, fingerprint included, instead of replaying the node to
run it; and what the call taught the search about its arguments (the
moduli a pick was taken by, the steps counted against a pause) with it.
The same holds for the drain of a state, and for what a node offers (the
rules enabled there, whether callbacks are ready): a function of the state
alone. tests/test_mutation.py checks on small bounds that the verdicts,
counterexamples and end states are the same with and without taking them.
"""

from __future__ import annotations

from typing import Any

from attrs import define

from stateful.exhaustive.rules import Budget, Pick
from stateful.exhaustive.trial import Outcome
from stateful.violations import Violation

CallKey = tuple[str, tuple[tuple[str, Any], ...]]


@define(frozen=True)
class Call:
    digest: bytes
    fatal: Violation | None
    warnings: tuple[Violation, ...]
    preempted: bool
    spun: bool
    paused: bool
    quiescent: bool
    ran: int  # the design's statements (bit mask) the call ran
    picks: tuple[tuple[str, frozenset[int], bool], ...]  # each pick's moduli, and whether raw
    counted: tuple[int, ...]  # the step counts a never-falling pause (Budget) was compared with
    # Where an interrupt would fire, when the search asked (Outcome.interrupt_points).
    interrupt_points: tuple[bool, ...] | None = None


def call_key(rule: str, args: dict[str, Any]) -> CallKey:
    return (rule, tuple(sorted((name, _arg(v)) for name, v in args.items())))


def _arg(v: Any) -> Any:
    # A probe's Pick and Budget record what the call does with them: not the
    # same call as the plain number, though it runs the same steps.
    if isinstance(v, Budget):
        return ("budget",)
    if isinstance(v, Pick):
        return ("pick", int(v))
    return v


def bare(violation: Violation) -> Violation:
    """The violation without its traceback, which holds the whole machine alive."""
    return type(violation)(*violation.args)


def record(out: Outcome, ran: int, args: dict[str, Any]) -> Call:
    """The call's outcome; `ran`: the statements (bit mask) it ran."""
    return Call(
        digest=out.digest,
        fatal=None if out.fatal is None else bare(out.fatal),
        warnings=tuple(bare(w) for w in out.warnings),
        preempted=out.preempted,
        spun=out.spun,
        paused=out.paused,
        quiescent=out.quiescent,
        ran=ran,
        picks=tuple(
            (name, frozenset(v.moduli), v.raw[0])
            for name, v in sorted(args.items())
            if isinstance(v, Pick)
        ),
        counted=next((tuple(v.seen) for v in args.values() if isinstance(v, Budget)), ()),
        interrupt_points=None if out.interrupt_points is None else tuple(out.interrupt_points),
    )


def taken(call: Call, args: dict[str, Any]) -> Outcome:
    """The outcome of the recorded call, its arguments' records filled as running it would."""
    for name, moduli, raw in call.picks:
        pick = args[name]
        pick.moduli.update(moduli)
        if raw:
            pick.raw[0] = True
    for v in args.values():
        if isinstance(v, Budget):
            v.seen.extend(call.counted)
    return Outcome(
        machine=None,
        fatal=call.fatal,
        warnings=list(call.warnings),
        preempted=call.preempted,
        spun=call.spun,
        paused=call.paused,
        quiescent=call.quiescent,
        digest=call.digest,
        interrupt_points=None if call.interrupt_points is None else list(call.interrupt_points),
    )
