"""The teardown drain: run the machine to quiescence, then look for leaks.

Every context runs to completion, grace periods end, softirqs run the ready
callbacks (only where bh is enabled), every mm exits. Whatever is still
spinning when nothing else can move is a deadlock; whatever is still
allocated at the end is a leak.
"""

from __future__ import annotations

from stateful import ops
from stateful.kernel.cpu import Context
from stateful.kernel.world import World
from stateful.violations import Deadlock, Leak

MAX_ROUNDS = 10_000


def _run_everything(w: World) -> bool:
    moved = False
    for cpu in w.cpus:
        while (ctx := cpu.top) is not None and w.runnable(ctx):
            w.run(ctx)
            moved = True
    return moved


def _stuck(w: World) -> list[Context]:
    return [c for cpu in w.cpus for c in (cpu.task, cpu.softirq) if c is not None and not c.done]


def drain(w: World, pt: ops.PageTables) -> None:
    for _ in range(MAX_ROUNDS):
        if _run_everything(w):
            continue
        if w.rcu.needs_grace_period():
            if not w.rcu.in_progress:
                w.rcu.start_gp()
            if w.rcu.may_end_gp():
                w.rcu.end_gp()
                continue
        ready = [cpu for cpu in w.cpus if w.rcu.has_ready(cpu.id) and cpu.softirq_may_start()]
        if ready:
            w.run(w.start_softirq(ready[0]))
            continue
        stuck = _stuck(w)
        if stuck:
            w.report(
                Deadlock,
                "rcu: INFO: rcu_sched detected stalls at teardown: "
                + "; ".join(f"{c!r} spins in {c.blocked.why if c.blocked else '?'}" for c in stuck),
            )
            return
        live = pt.mms()
        if live:
            mm = live[0]
            w.run(w.start_task(w.cpus[0], f"exit_mmap({mm})", ops.exit_mm(w, pt, mm, False)))
            continue
        break
    else:
        raise RuntimeError("drain did not reach quiescence")
    check_leaks(w)


def check_leaks(w: World) -> None:
    leaked = [
        f"{p} ({p.purpose}, _refcount byte {p.refbyte:#04x})" for p in w.allocator.live.values()
    ]
    leaked += [f"{mm} (mm_struct, mm_count {mm.mm_count})" for mm in w.mms if not mm.freed]
    if leaked:
        w.report(Leak, f"kmemleak: {len(leaked)} new suspected memory leaks: " + ", ".join(leaked))
