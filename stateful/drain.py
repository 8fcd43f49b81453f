"""The teardown drain: run the machine to quiescence, then look for leaks.

Every mm that can exits first, with whatever is paused still paused; then
every context runs to completion, grace periods end, softirqs run the ready
callbacks (only where bh is enabled), the remaining mms exit. Whatever is still
spinning, or sleeping on a lock, when nothing else can move is a deadlock;
whatever is still allocated at the end is a leak.

The CPUs are visited in the order given (the machine gives them in
canonical order, stateful/symmetry.py), never by their numbers: a state and
its mirror, the same but for how the CPUs are numbered, drain alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from stateful import ops
from stateful.kernel.cpu import CPU, Context
from stateful.kernel.world import World
from stateful.violations import Deadlock, Leak

MAX_ROUNDS = 10_000


def _run_everything(w: World, cpus: Sequence[CPU]) -> bool:
    moved = False
    for cpu in cpus:
        while (ctx := cpu.top) is not None and w.runnable(ctx):
            w.run(ctx)
            moved = True
    return moved


def _stuck(cpus: Sequence[CPU]) -> list[Context]:
    return [c for cpu in cpus for c in (cpu.task, cpu.softirq) if c is not None and not c.done]


def _stall(stuck: list[Context]) -> str:
    """Worded as the RCU stall detector (spinners) or the hung-task detector (sleepers)."""
    spinning = [c for c in stuck if c.blocked is None or c.blocked.spins]
    sleeping = [c for c in stuck if c not in spinning]
    parts = [f"{c!r} spins in {c.blocked.why if c.blocked else '?'}" for c in spinning]
    parts += [f"{c!r} sleeps in {c.blocked.why}" for c in sleeping if c.blocked]
    if spinning:
        return "rcu: INFO: rcu_sched detected stalls at teardown: " + "; ".join(parts)
    return "INFO: task blocked for more than 120 seconds at teardown: " + "; ".join(parts)


def _exit_with_work_in_flight(w: World, pt: ops.PageTables, cpus: Sequence[CPU]) -> None:
    """The processes exit first, while what is paused stays paused: a softirq
    halfway through its callbacks, khugepaged halfway through a retract, a
    task halfway through an operation on another mm. An mm with a thread in
    an operation cannot exit yet (that thread holds mm_users); it exits
    later, in the loop. An exit that must wait for a lock sleeps meanwhile."""
    for mm in pt.exitable():
        idle = [cpu for cpu in cpus if cpu.idle]
        if not idle:
            return
        w.run(w.start_task(idle[0], f"exit_mmap({mm})", ops.exit_mm(w, pt, mm, False)))


def drain(w: World, pt: ops.PageTables, cpus: Sequence[CPU] | None = None) -> None:
    cpus = list(w.cpus if cpus is None else cpus)
    _exit_with_work_in_flight(w, pt, cpus)
    for _ in range(MAX_ROUNDS):
        if _run_everything(w, cpus):
            continue
        if w.end_grace_period():
            continue
        ready = [cpu for cpu in cpus if w.softirq_may_run(cpu)]
        if ready:
            w.run(w.start_softirq(ready[0]))
            continue
        stuck = _stuck(cpus)
        if stuck:
            w.report(Deadlock, _stall(stuck))
            return
        live = pt.exitable()
        if live:
            mm = live[0]
            w.run(w.start_task(cpus[0], f"exit_mmap({mm})", ops.exit_mm(w, pt, mm, False)))
            continue
        break
    else:
        raise RuntimeError("drain did not reach quiescence")
    check_leaks(w)


def check_leaks(w: World) -> None:
    """Once everything has run: what was never freed, and nothing can free now.

    kmemleak reports an mm_struct, a slab object; it does not track the page
    allocator, so a page-table page that leaks is lost without a word."""
    pages = [
        f"{p} ({p.purpose}, _refcount byte {p.refbyte:#04x})" for p in w.allocator.live.values()
    ]
    mms = [f"{mm} (mm_struct, mm_count {mm.mm_count})" for mm in w.mms if not mm.freed]
    said = []
    if pages:
        said.append(
            f"leak: {', '.join(pages)} never freed, and nothing left to free "
            f"{'it' if len(pages) == 1 else 'them'} (kmemleak does not track the page "
            "allocator: the kernel says nothing, the memory is lost)"
        )
    if mms:
        said.append(f"kmemleak: {len(mms)} new suspected memory leaks: {', '.join(mms)}")
    if said:
        w.report(Leak, "; ".join(said))
