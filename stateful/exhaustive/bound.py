"""The bound of an exhaustive search: every axis named, parsed from `--bound`, printed.

A scenario is a setup of at most S operations, each run atomically from
boot (`pause=0`, `irq=0`, nothing in flight before or after it), then at
most C more operations: each may be started while others are in flight,
paused, interrupted, or run after a softirq. Every interleaving of a
scenario is explored, with at most P preemptions and I interrupts:

  preemption  a rule call that leaves its context able to run but switched
              away from (a `pause` that falls before the operation's end).
              A switch at a spin, or at an operation's end, is free: a
              softirq run to its end leaves the task it interrupted where it
              was, not switched away from (the interrupt switched away from
              it, and counts under I), so a call may stop there, at the end
              of the softirq an interrupt ran (`pause` = `irq`); and a
              context that spun is judged at its spin, though a lock
              released later in the same call lets it run by the call's end.
  interrupt   a softirq that runs the ready RCU callbacks: an `irq` that
              fires, or a `softirq` rule call. It can come at every point
              where bh is enabled and callbacks are ready.

The machine's own limits are axes too, passed to it as its MachineConfig so
that a counterexample's replay file runs on the same machine: CPUs, the mms
at boot and alive at once, page tables alive at once, mm exits. Two rule
arguments are switched by the bound: PGSTE mms (`pgste`) and the injected
batch-allocation failure (`batch_alloc_fails`). Grace periods end after
every rule call where no reader holds them up (the machine's
`auto_grace_period`), at every point the machine lets one end; and every
explored state is drained (teardown: the mms exit, every context and
callback runs to its end; then deadlock and leak are checked).
"""

from __future__ import annotations

import re

import attrs
from attrs import define

from stateful.machine import MachineConfig


class BoundError(ValueError):
    """An invalid --bound; the message shows the valid form."""


@define(frozen=True)
class Axis:
    key: str  # as written in --bound
    field: str  # the Bound attribute
    meaning: str
    low: int = 0
    high: int | None = None


AXES: tuple[Axis, ...] = (
    Axis("S", "setup", "operations run atomically from boot, one after another"),
    Axis("C", "concurrent", "operations after the setup: overlapping, paused, interrupted"),
    Axis("P", "preemptions", "switches away from a context that could still run"),
    Axis("I", "interrupts", "softirqs that run ready RCU callbacks (irq, or the softirq rule)"),
    Axis("cpus", "cpus", "CPUs", low=1, high=4),
    Axis("boot", "boot_mms", "mms alive at boot", low=1),
    Axis("mms", "mms", "mms alive at once", low=1),
    Axis("tables", "tables", "page tables alive at once", low=1),
    Axis("exits", "exits", "mm exits (exit_mmap, then the last mmdrop)"),
    Axis("pgste", "pgste", "PGSTE mms may be created (1) or not (0)", high=1),
    Axis("batch", "batch_fail", "the mmu_gather batch allocation may fail (1) or not (0)", high=1),
)
BY_KEY = {a.key: a for a in AXES}
FORM = ",".join(f"{a.key}=N" for a in AXES)
# MachineConfig fields that the bound sets: the machine enforces them.
MACHINE_FIELDS = {
    "cpus": "ncpus",
    "boot_mms": "initial_mms",
    "mms": "max_mms",
    "tables": "max_tables",
    "exits": "max_exits",
}
# Flag arguments a bound switches off: argument name -> Bound attribute.
FLAG_AXES = {"pgste": "pgste", "batch_alloc_fails": "batch_fail"}


@define(frozen=True)
class Bound:
    # The default: the smallest bound measured to hold every known bug of the
    # built-in designs (benchmarks/exhaustive_speed.py), with no margin: one
    # more on S, C or P multiplies the run by ten or more (see the estimate).
    setup: int = 3
    concurrent: int = 1
    preemptions: int = 1
    interrupts: int = 1
    cpus: int = 2
    boot_mms: int = 1
    mms: int = 1
    tables: int = 2
    exits: int = 0
    pgste: int = 0
    batch_fail: int = 0

    def __str__(self) -> str:
        return " ".join(f"{a.key}={getattr(self, a.field)}" for a in AXES)

    def explained(self) -> list[str]:
        lines = [f"  {a.key:<7}{getattr(self, a.field):>3}  {a.meaning}" for a in AXES]
        lines.append("  grace periods end after every rule call where no reader holds them up")
        lines.append("  every explored state is drained (teardown), then deadlock and leak checked")
        return lines

    @property
    def operations(self) -> int:
        return self.setup + self.concurrent

    def machine_config(self, base: MachineConfig | None = None) -> MachineConfig:
        base = base or MachineConfig()
        known = {f.name for f in attrs.fields(MachineConfig)}
        changes = {m: getattr(self, b) for b, m in MACHINE_FIELDS.items() if m in known}
        if "max_mms_created" in known:
            # Every mm_create is an operation: the bound on operations bounds them.
            changes["max_mms_created"] = self.boot_mms + self.operations
        return attrs.evolve(base, **changes)

    def allows(self, arg: str, value: object) -> bool:
        """Whether a flag argument may take `value` within this bound."""
        field = FLAG_AXES.get(arg)
        return field is None or value is False or bool(getattr(self, field))


DEFAULT = Bound()
# The default run's first pass, before its random survey: the default bound
# without preemptions, a few seconds per design (every interrupt point is
# still tried, so a callback that runs inside an operation is covered).
FIRST = attrs.evolve(DEFAULT, preemptions=0)


def parse_bound(text: str, base: Bound = DEFAULT) -> Bound:
    """`S=4,C=2,P=2` (any subset of the axes, in any order; the rest from base)."""
    changes: dict[str, int] = {}
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not parts:
        raise BoundError(f"--bound is empty; valid form: {FORM} (any subset), e.g. S=3,C=2,P=1")
    for part in parts:
        key, eq, value = part.partition("=")
        axis = BY_KEY.get(key.strip())
        if not eq or axis is None:
            raise BoundError(
                f"--bound {text!r}: {part!r} is not AXIS=N; valid form: {FORM} "
                f"(any subset), e.g. S=3,C=2,P=1. Axes: {', '.join(BY_KEY)}"
            )
        if not value.strip().isdigit():
            raise BoundError(
                f"--bound {text!r}: {key}={value!r} is not a whole number; valid form: {FORM}"
            )
        n = int(value)
        if n < axis.low or (axis.high is not None and n > axis.high):
            top = "" if axis.high is None else f" and at most {axis.high}"
            raise BoundError(f"--bound {text!r}: {key} must be at least {axis.low}{top}")
        if axis.field in changes:
            raise BoundError(f"--bound {text!r}: {key} is given twice")
        changes[axis.field] = n
    bound = attrs.evolve(base, **changes)
    if bound.boot_mms > bound.mms:
        raise BoundError(f"--bound {text!r}: boot={bound.boot_mms} exceeds mms={bound.mms}")
    return bound
