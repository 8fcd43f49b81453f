"""The machine under measure: a World as the state machine builds it, and its helpers.

What the memory and the contention runs share: making the World, booting
its mms, and which
warning-class properties were reported on the way.
"""

from __future__ import annotations

from designs.base import Design
from stateful import ops
from stateful.kernel.mm import MMStruct
from stateful.kernel.world import KernelConfig, World
from stateful.violations import PROPERTIES

# The same warnings as the state machine lets the run go on after: a splat is
# not the end of the kernel, and not the end of a measure.
WARNINGS = frozenset(name for name, cls in PROPERTIES.items() if cls.warning)


def _new_world(design_cls: type[Design], ncpus: int) -> World:
    """As stateful.machine builds its World: the design is made inside it."""
    world = World.for_design(design_cls, KernelConfig(ncpus=ncpus, continue_after=WARNINGS))
    # Nobody reads the diagram of a measure; recording it would cost time.
    world.trace.enabled = False
    return world


def _boot_mm(w: World, pt: ops.PageTables, name: str) -> MMStruct:
    """Create an mm on CPU0's task context, as the machine boots its first mms.

    Non-PGSTE only: a PGSTE mm uses a whole 4K page in every design, so it
    would only dilute the difference the memory measure is about."""
    mm = w.run_to_end(w.cpus[0], f"fork: mm_alloc {name}", ops.mm_create(w, pt, name, False))
    assert isinstance(mm, MMStruct)
    return mm


def _reported(w: World) -> tuple[str, ...]:
    return tuple(sorted({r.property for r in w.reports}))
