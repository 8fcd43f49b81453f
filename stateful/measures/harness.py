"""The machine under measure: a World as the state machine builds it, and its helpers.

What the memory and the contention runs share: making the World, booting
its mms, ending a grace period, whether a softirq may run, and which
warning-class properties were reported on the way.
"""

from __future__ import annotations

from designs.base import Design
from stateful import ops
from stateful.kernel.cpu import CPU
from stateful.kernel.mm import MMStruct
from stateful.kernel.world import KernelConfig, World
from stateful.violations import PROPERTIES

# The same warnings as the state machine lets the run go on after: a splat is
# not the end of the kernel, and not the end of a measure.
WARNINGS = frozenset(name for name, cls in PROPERTIES.items() if cls.warning)


def _new_world(design_cls: type[Design], ncpus: int) -> World:
    """As stateful.machine builds its World: the design is made inside it."""
    config = KernelConfig(ncpus=ncpus, continue_after=WARNINGS)
    world = World(design=None, config=config)  # type: ignore[arg-type]
    with world.running():
        world.design = design_cls()
    # Nobody reads the diagram of a measure; recording it would cost time.
    world.trace.enabled = False
    return world


def _boot_mm(w: World, pt: ops.PageTables, name: str) -> MMStruct:
    """Create an mm on CPU0's task context, as the machine boots its first mms.

    Non-PGSTE only: a PGSTE mm uses a whole 4K page in every design, so it
    would only dilute the difference the memory measure is about."""
    ctx = w.start_task(w.cpus[0], f"fork: mm_alloc {name}", ops.mm_create(w, pt, name, False))
    w.run(ctx)
    assert ctx.done, f"{ctx!r} did not finish creating {name}"
    return ctx.result


def _grace_period(w: World) -> bool:
    """One grace period, if no reader holds it up. True when one ended."""
    if not w.rcu.in_progress:
        w.rcu.start_gp()
    if not w.rcu.may_end_gp():
        return False
    w.rcu.end_gp()
    return True


def _softirq_may_run(w: World, cpu: CPU) -> bool:
    return w.rcu.has_ready(cpu.id) and cpu.softirq_may_start()


def _reported(w: World) -> tuple[str, ...]:
    return tuple(sorted({r.property for r in w.reports}))
