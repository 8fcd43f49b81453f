"""Tiny helpers shared by the unit tests of the kernel model (tests/test_kernel_*.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RULE_MARKER

from designs.base import Design
from designs.upstream_6_4 import Upstream64
from stateful.kernel import api as k
from stateful.kernel import current
from stateful.kernel.cpu import Context
from stateful.kernel.locks import SpinLock
from stateful.kernel.memory import Page
from stateful.kernel.rcu import Head
from stateful.kernel.world import KernelConfig, World
from stateful.machine import machine_for
from stateful.replay import Step

Script = k.Steps[Any]


def make_world(ncpus: int = 2, continue_after: Iterable[str] = (), **config: Any) -> World:
    """A fresh machine running the upstream-6.4 design (its bad_bits rule, its hooks)."""
    kconfig = KernelConfig(ncpus=ncpus, continue_after=frozenset(continue_after), **config)
    return World.for_design(Upstream64, kconfig)


def run_task(world: World, script: Script, cpu: int = 0, label: str = "setup") -> Any:
    """Run `script` as a task on an idle CPU to its end; return what it returned."""
    return world.run_to_end(world.cpus[cpu], label, script)


def new_page(world: World) -> Page:
    page = run_task(world, k.alloc_page(), label="alloc")
    assert isinstance(page, Page)
    return page


def queue_callback(world: World, cpu: int, head: Head, fn: k.Callback, label: str) -> None:
    """A task on `cpu` does call_rcu(head, fn) and returns."""
    run_task(world, k.call_rcu(head, fn, label), cpu=cpu, label=f"queue {label}")


def grace_period(world: World) -> None:
    """A whole grace period, with no reader in the way."""
    world.rcu.start_gp()
    assert world.rcu.may_end_gp()
    world.rcu.end_gp()


def softirq(world: World, cpu: int = 0) -> Context:
    """Raise RCU_SOFTIRQ on `cpu` and run it until it ends or spins."""
    ctx = world.start_softirq(world.cpus[cpu])
    world.run(ctx)
    return ctx


def recorder(log: list[str], name: str) -> k.Callback:
    """An RCU callback that records its name, its CPU and whether it ran in softirq."""

    def callback(head: Head) -> Script:
        ctx = current.context()
        log.append(f"{name}@CPU{ctx.cpu.id}/{ctx.kind}")
        yield None

    return callback


def locker(lock: SpinLock, bh: bool, log: list[str] | None = None) -> Callable[..., Script]:
    """A script (or RCU callback) that takes and releases `lock`, with or without _bh."""

    def script(*_: object) -> Script:
        if bh:
            yield from k.spin_lock_bh(lock)
            yield from k.spin_unlock_bh(lock)
        else:
            yield from k.spin_lock(lock)
            yield from k.spin_unlock(lock)
        if log is not None:
            log.append(f"took {lock}")

    return script


def trace_text(world: World) -> str:
    """The trace, one event a line, unwrapped (the diagram wraps long lines)."""
    return "\n".join(event.text for event in world.trace.events)


def in_order(text: str, *parts: str) -> bool:
    """Every part occurs in text, each after the one before it."""
    at = 0
    for part in parts:
        at = text.find(part, at)
        if at < 0:
            return False
    return True


def step_on(machine: Any, step: Any) -> None:
    """One rule call on a machine, as a replay makes it; its precondition must hold."""
    spec = getattr(getattr(type(machine), step.rule), RULE_MARKER)
    assert all(pre(machine) for pre in spec.preconditions), f"{step} is not enabled"
    getattr(machine, step.rule)(**dict(step.args))
    machine.design_invariants()


def drive(design: type[Design], steps: Sequence[Any]) -> Any:
    """The machine after `steps`, before its teardown; a violation raises."""
    machine = machine_for(design, None)()
    for step in steps:
        step_on(machine, step)
    return machine


def small_search(max_examples: int) -> settings:
    """A short derandomized generate-only search, for a test that the machine
    finds a planted bug by itself."""
    return settings(
        max_examples=max_examples,
        stateful_step_count=30,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


def step(rule: str, **args: object) -> Step:
    """One rule call, written as a replay records it."""
    return Step.of(rule, args)
