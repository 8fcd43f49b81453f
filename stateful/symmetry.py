"""CPU numbers are names: a machine's state read with its CPUs numbered canonically.

The kernel does nothing by a CPU's number but find that CPU's own RCU
callback queue, so two states that differ only in how their CPUs are
numbered (CPU0 paused in a free while CPU1 is idle, or the other way round)
behave alike, each the other's mirror. The canonical numbering makes them
one state: the exhaustive search explores one of the two (its CPU symmetry,
`Pruning.symmetry`), and the teardown drain visits the CPUs in the same
canonical order, so that mirrored states drain alike too and a
counterexample found in one drains the same way when it is replayed.

The canonical order: CPUs sorted by what each holds, read without its
number (the contexts on it, where each is, its queued callbacks); CPUs that
hold alike are tried in every order, and the order whose fingerprint is
least is taken. Both readings are of the state alone, so a state and its
mirror come to the same numbering.
"""

from __future__ import annotations

import itertools
from typing import Any

from stateful.fingerprint import fingerprint
from stateful.kernel.cpu import CPU, Context, progress
from stateful.kernel.world import World


def _context(ctx: Context | None) -> tuple[Any, ...]:
    if ctx is None:
        return ()
    return (ctx.label, ctx.done, ctx.bh_disabled, ctx.depth, progress(ctx.gen))


def holds(world: World, cpu: CPU) -> tuple[Any, ...]:
    """What cpu holds, without its number: the key CPUs are sorted by."""
    queue = world.rcu.queues.get(cpu.id, ())
    return (_context(cpu.task), _context(cpu.softirq), tuple((cb.label, cb.target) for cb in queue))


EMPTY = ((), (), ())


def _orders(world: World) -> list[list[CPU]]:
    """The CPUs sorted by what they hold; CPUs that hold alike, in every
    order, unless they hold nothing (then every order reads the same)."""
    # The CPU that holds most first: the drain then starts where the work
    # is, as a run that used CPU0 first reads (CPU0's column first).
    keyed = sorted(
        ((holds(world, cpu), -cpu.id, cpu) for cpu in world.cpus), key=lambda k: k[:2], reverse=True
    )
    groups = [
        (key, [cpu for _, _, cpu in group])
        for key, group in itertools.groupby(keyed, key=lambda k: k[0])
    ]
    first = [cpu for _, group in groups for cpu in group]
    if all(len(group) == 1 or key == EMPTY for key, group in groups):
        return [first]
    return [
        [cpu for group in choice for cpu in group]
        for choice in itertools.product(*(itertools.permutations(g) for _, g in groups))
    ]


def canonical(machine: Any, skip: frozenset[str]) -> tuple[bytes, list[CPU]]:
    """The machine's fingerprint with its CPUs numbered canonically, and that order."""
    return _least(machine, skip, _orders(machine.world))


def cpu_order(machine: Any, skip: frozenset[str]) -> list[CPU]:
    """The CPUs in canonical order: the order the teardown drain visits them in."""
    orders = _orders(machine.world)
    if len(orders) == 1:
        return orders[0]
    return _least(machine, skip, orders)[1]


def _least(machine: Any, skip: frozenset[str], orders: list[list[CPU]]) -> tuple[bytes, list[CPU]]:
    """Of these orders, the one whose numbering gives the least fingerprint."""
    world: World = machine.world
    best: tuple[bytes, list[CPU]] | None = None
    for order in orders:
        with world.cpus_numbered(order):
            digest = fingerprint(machine, skip)
        if best is None or digest < best[0]:
            best = (digest, order)
    assert best is not None
    return best
