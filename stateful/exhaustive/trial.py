"""One rule call, tried on a machine replayed to a node, and what it did.

Generators in flight cannot be copied, so each call is tried on a fresh
machine that replays the path to its node (stateful/replay.py's way,
without the trace). What the search needs to know of the call: the
violation that ended it, the warnings it reported, whether it left a
context it ran switched away from while able to run (the pause fell: a
preemption, unless at the end of a softirq) or spinning (a free
switch), whether anything is left in flight, and the state's
fingerprint, read before anything else runs on the machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import define

from stateful.fingerprint import fingerprint
from stateful.kernel.cpu import Context, progress
from stateful.kernel.world import World
from stateful.machine import NOT_STATE
from stateful.replay import Step
from stateful.symmetry import canonical
from stateful.violations import Violation


@define
class Outcome:
    machine: Any
    fatal: Violation | None
    warnings: list[Violation]
    preempted: bool
    spun: bool  # it stopped where its context spins or sleeps: a free switch
    # The pause fell: a context the call ran is left able to run, charged as
    # a preemption or not (at the end of a softirq it ran on top of a task).
    paused: bool
    quiescent: bool
    symmetric: bool = True  # CPUs numbered canonically (stateful/symmetry.py)
    # Read on a call without an interrupt: whether one after the k-th step of
    # the context it ran would fire, at [k - 1] (the last: every k past the end).
    interrupt_points: list[bool] | None = None
    _digest: bytes | None = None

    @property
    def digest(self) -> bytes:
        """Read once, before anything else runs on the machine (the drain)."""
        if self._digest is None:
            self._digest = state_of(self.machine, self.symmetric)
        return self._digest


def state_of(machine: Any, symmetric: bool) -> bytes:
    """The machine's fingerprint; with `symmetric`, with its CPUs numbered canonically."""
    if symmetric:
        return canonical(machine, NOT_STATE)[0]
    return fingerprint(machine, NOT_STATE)


def replay(machine_cls: type, path: Sequence[Step]) -> Any:
    """A fresh machine, run through path (each step known to be enabled)."""
    machine = machine_cls()
    machine.world.trace.enabled = False
    for step in path:
        getattr(machine, step.rule)(**dict(step.args))
        machine.design_invariants()
    return machine


def call(
    machine: Any,
    rule: str,
    args: dict[str, Any],
    symmetric: bool = True,
    interrupt_points: bool = False,
) -> Outcome:
    world: World = machine.world
    before = _contexts(world)
    seen = len(world.reports)
    fatal = None
    points = machine.interrupt_points = [] if interrupt_points else None
    try:
        getattr(machine, rule)(**args)
        machine.design_invariants()
    except Violation as violation:
        fatal = violation
    finally:
        machine.interrupt_points = None
    # A violation stops the run where it happens: no switch away.
    left = [] if fatal is not None else _left(world, before)
    return Outcome(
        machine=machine,
        fatal=fatal,
        warnings=list(world.reports[seen:]),
        preempted=any(runnable and not ctx.left_at_interrupt for ctx, runnable in left),
        spun=any(not runnable for _, runnable in left),
        paused=any(runnable for _, runnable in left),
        quiescent=all(cpu.idle for cpu in world.cpus),
        symmetric=symmetric,
        interrupt_points=points or None,
    )


def _contexts(world: World) -> list[tuple[Context, tuple[Any, ...]]]:
    """Every context in flight, and where it is."""
    return [
        (ctx, progress(ctx.gen))
        for cpu in world.cpus
        for ctx in (cpu.task, cpu.softirq)
        if ctx is not None
    ]


def _left(
    world: World, before: list[tuple[Context, tuple[Any, ...]]]
) -> list[tuple[Context, bool]]:
    """Each context the call ran and left on top of its CPU, not ended, and
    whether it was left able to run (the pause fell) or spinning or
    sleeping (a free switch). A pause is a preemption unless it fell at the
    end of a softirq that ran on top of the context
    (`Context.left_at_interrupt`): that switch is at the end of the
    softirq's operation, which is free.

    Each is judged where the call last left it, not where the call ends: a
    softirq that spun on a lock the interrupted task then released was
    switched away from at its spin, which is free, though it could run by
    the call's end. A context the call did not run is not switched away
    from: the task a softirq interrupted, on top again once the call has run
    that softirq to its end, was left where it was."""
    left = []
    for cpu in world.cpus:
        top = cpu.top
        if top is None or top.done:
            continue
        held = next((where for ctx, where in before if ctx is top), None)
        if held is not None and held == progress(top.gen):
            continue  # the call did not run it
        runnable = top.left_runnable
        left.append((top, world.runnable(top) if runnable is None else runnable))
    return left
