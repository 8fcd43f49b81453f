"""The world and context the scheduler is stepping right now.

Primitives are called from design code that has no handle on the world, as
kernel code has none on the CPU it runs on; the scheduler sets these two
around every step, exactly as `current` and `smp_processor_id()` are set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stateful.kernel.cpu import Context
    from stateful.kernel.world import World

_world: World | None = None


def world() -> World:
    if _world is None:
        raise RuntimeError("kernel primitive called outside a World (no current CPU)")
    return _world


def set_world(w: World | None) -> World | None:
    global _world
    previous, _world = _world, w
    return previous


def context() -> Context:
    ctx = world().current
    if ctx is None:
        raise RuntimeError("kernel primitive called outside a running context")
    return ctx
