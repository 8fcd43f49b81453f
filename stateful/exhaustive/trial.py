"""One rule call, tried on a machine replayed to a node, and what it did.

Generators in flight cannot be copied, so each call is tried on a fresh
machine that replays the path to its node (stateful/replay.py's way,
without the trace). What the search needs to know of the call: the
violation that ended it, the warnings it reported, whether it left a
context it ran switched away from while able to run (the pause fell: a
preemption, unless at the end of a softirq) or spinning (a free
switch), whether anything is left in flight, and the state's
fingerprint, read before anything else runs on the machine.

A call whose pause is a `Budget` (it never falls) passes, step by step,
through the state every shorter pause of the same call stops in: the
World's `pause_probe` is called there, with the stopped context's flags
set as the stop sets them. Read there (`pauses`), each is the outcome of
that shorter call: what the rule call does after its contexts stop
(`after_run`, then the design's invariants) is run, the state read, and
what those did undone before the call goes on. Such an outcome has no
machine of its own: the search replays the call when it needs one (to
drain a new state), and checks that it reads the same.
"""

from __future__ import annotations

import functools
from collections.abc import Container, Sequence
from typing import Any

import attrs
from attrs import define

from stateful.exhaustive.rules import Budget
from stateful.fingerprint import fingerprint
from stateful.kernel.cpu import Context, progress
from stateful.kernel.world import World
from stateful.machine import NOT_STATE
from stateful.replay import Step
from stateful.symmetry import canonical
from stateful.violations import Violation

# Every pause a call can take: what `call` reads unless told fewer.
EVERY_PAUSE: Container[int] = range(1, Budget.NEVER)


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
    # Read on a call whose pause is a Budget: the outcome of the same call
    # with each shorter pause that stops it, by pause (see the module's doc).
    shorter: dict[int, Outcome] | None = None
    # Read with the interrupt points: where an interrupt after the k-th step
    # would fire, at [k] (past the end: at the last), the state it fires in.
    interrupt_keys: dict[int, InterruptPoint] | None = None
    # Not run: the outcome of an earlier call from the same interrupt point
    # (stateful/exhaustive/search.py, `Pruning.after_interrupt`).
    reused: bool = False
    # Where each CPU's top context was left: (CPU id, kind, progress). A stop
    # where a context is back where the call began reads as "not run by the
    # call", so a call taken from another must not stop there.
    tops: tuple[tuple[int, str, tuple[Any, ...]], ...] = ()
    _digest: bytes | None = None

    def read_now(self) -> None:
        """Read the state's fingerprint now, while the machine is in it."""
        self._digest = state_of(self.machine, self.symmetric)

    @property
    def digest(self) -> bytes:
        """Read once, before anything else runs on the machine (the drain)."""
        if self._digest is None:
            self.read_now()
        assert self._digest is not None
        return self._digest


@define(frozen=True)
class InterruptKey:
    """A state an interrupt fires in, and the context it interrupts: what a
    call does from there on depends on nothing else. The state is read with
    its CPUs numbered canonically, and the key holds that numbering, so two
    keys are equal only for the same state, not for a state and its mirror."""

    digest: bytes
    cpus: tuple[int, ...]  # the CPUs' ids, in canonical order
    cpu: int  # the interrupted context's CPU
    kind: str  # and kind (task or softirq)


@define
class InterruptPoint:
    key: InterruptKey
    reports: list[Violation]  # what the call had reported by then
    # Where the interrupted context was when the call began (None: the call
    # started it): a stop there would read as "not run by the call".
    start: tuple[Any, ...] | None


def state_of(machine: Any, symmetric: bool) -> bytes:
    """The machine's fingerprint; with `symmetric`, with its CPUs numbered canonically."""
    return numbered_state(machine, symmetric)[0]


def numbered_state(machine: Any, symmetric: bool) -> tuple[bytes, tuple[int, ...]]:
    """state_of, and the CPUs' ids in the order the fingerprint numbers them."""
    if symmetric:
        digest, order = canonical(machine, NOT_STATE)
        return digest, tuple(cpu.id for cpu in order)
    return fingerprint(machine, NOT_STATE), tuple(cpu.id for cpu in machine.world.cpus)


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
    pauses: dict[int, Outcome] | None = None,
    wanted: Container[int] = EVERY_PAUSE,
    interrupt_keys: bool = False,
) -> Outcome:
    """The rule call on machine. With `pauses` (the call's pause a Budget),
    also the outcome of the same call with each shorter pause in `wanted`,
    by pause. With `interrupt_keys` (and `interrupt_points`), also the state
    at each point where an interrupt would fire."""
    world: World = machine.world
    before = _contexts(world)
    seen = len(world.reports)
    fatal = None
    points = machine.interrupt_points = [] if interrupt_points else None
    keys: dict[int, InterruptPoint] | None = None
    if points is not None and interrupt_keys:
        keys = {}
        machine.interrupt_probe = functools.partial(
            _interrupt_point, machine, before, seen, symmetric, points, keys
        )
    if pauses is not None:
        world.pause_probe = functools.partial(
            _stopped_here, machine, before, seen, symmetric, pauses, wanted
        )
    try:
        getattr(machine, rule)(**args)
        machine.design_invariants()
    except Violation as violation:
        fatal = violation
    finally:
        machine.interrupt_points = None
        machine.interrupt_probe = None
        world.pause_probe = None
    out = _outcome(machine, before, seen, fatal, symmetric, points or None)
    out.shorter = pauses
    out.interrupt_keys = keys
    return out


def _interrupt_point(
    machine: Any,
    before: list[tuple[Context, tuple[Any, ...]]],
    seen: int,
    symmetric: bool,
    points: list[bool],
    keys: dict[int, InterruptPoint],
    ctx: Context,
) -> None:
    """The machine's interrupt_probe: the state where an interrupt after the
    step just taken (the len(points)-th) would fire."""
    world: World = machine.world
    digest, cpus = numbered_state(machine, symmetric)
    start = next((where for c, where in before if c is ctx), None)
    key = InterruptKey(digest, cpus, ctx.cpu.id, ctx.kind)
    keys[len(points)] = InterruptPoint(key, list(world.reports[seen:]), start)


def _outcome(
    machine: Any,
    before: list[tuple[Context, tuple[Any, ...]]],
    seen: int,
    fatal: Violation | None,
    symmetric: bool,
    points: list[bool] | None,
) -> Outcome:
    world: World = machine.world
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
        interrupt_points=points,
        tops=tuple(
            (cpu.id, cpu.top.kind, progress(cpu.top.gen))
            for cpu in world.cpus
            if cpu.top is not None and not cpu.top.done
        ),
    )


def _stopped_here(
    machine: Any,
    before: list[tuple[Context, tuple[Any, ...]]],
    seen: int,
    symmetric: bool,
    pauses: dict[int, Outcome],
    wanted: Container[int],
    ctx: Context,
    taken: int,
    budget: int,
) -> None:
    """The World's pause_probe: the outcome of the call with the pause that
    would stop it here, read, and what reading it ran undone."""
    if not isinstance(budget, Budget):
        return  # a budget of the machine's own (the steps up to an interrupt)
    pause = budget.offset + taken
    if pause not in wanted:
        return
    assert pause not in pauses, f"a pause of {pause} would stop the call twice"
    undo = _Undo.take(machine)
    fatal = None
    try:
        try:
            machine.after_run()
            machine.design_invariants()
        except Violation as violation:
            fatal = violation
        out = _outcome(machine, before, seen, fatal, symmetric, None)
        if fatal is None:
            out.read_now()
        out.machine = None
    finally:
        undo.restore()
    pauses[pause] = out


@define
class _Undo:
    """What `after_run` and the design's invariants can change, as it was.

    RCU's fields are put back as they were, each the same object with the
    same contents (a dict's lists too): `after_run` ends a grace period,
    and must move nothing else."""

    machine: Any
    rcu: dict[str, Any]
    contents: list[tuple[Any, Any]]  # (container, a copy of what it held)
    ended: bool
    invariants: set[str]
    reports: int
    events: int

    @classmethod
    def take(cls, machine: Any) -> _Undo:
        world: World = machine.world
        rcu = {f.name: getattr(world.rcu, f.name) for f in attrs.fields(type(world.rcu))}
        containers = [v for v in rcu.values() if isinstance(v, dict | set | list)]
        containers += [
            v for d in containers if isinstance(d, dict) for v in d.values() if isinstance(v, list)
        ]
        return cls(
            machine,
            rcu,
            [(c, c.copy()) for c in containers],
            machine.ended,
            set(machine.reported_invariants),
            len(world.reports),
            len(world.trace.events),
        )

    def restore(self) -> None:
        world: World = self.machine.world
        for name, value in self.rcu.items():
            setattr(world.rcu, name, value)
        for container, held in self.contents:
            container.clear()
            if isinstance(container, list):
                container.extend(held)
            else:
                container.update(held)
        self.machine.ended = self.ended
        self.machine.reported_invariants.intersection_update(self.invariants)
        del world.reports[self.reports :]
        del world.trace.events[self.events :]


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
