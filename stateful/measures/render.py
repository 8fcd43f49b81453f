"""The table of the measures, at most WIDTH columns, after the command that prints it."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from stateful.measures.results import Contention, Measures, _count_ops
from stateful.measures.workloads import (
    CONTENTION_CONFIGS,
    CONTENTION_OPS_PER_CPU,
    MEMORY_MMS,
    MEMORY_OPS,
)

COMMAND = "python benchmarks/measures.py"
WIDTH = 100  # of the rendered table
LOCK_WIDTH = 24
NOTE_MESSAGE = 160


def _fmt(value: float | int | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _cell(c: Contention, lock: str) -> str:
    mark = "*" if c.stop else ""
    return f"{c.spins.get(lock, 0)}/{c.acquisitions.get(lock, 0)}{mark}"


def _columns(rows: list[list[str]], left: int = 1) -> list[str]:
    """Aligned columns: the first `left` columns to the left, the figures to the right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def render_measures(rows: Mapping[str, Measures], command: str | None = None) -> str:
    """The measures of each design, at most WIDTH columns, after the command that makes them."""
    seeds = sorted({m.seed for m in rows.values()})
    if len(seeds) > 1:
        raise ValueError(f"rows measured with different seeds {seeds}: one table, one seed")
    seed = seeds[0] if seeds else 0
    lines = [
        f"$ {command or f'{COMMAND} --seed {seed}'}",
        f"memory and reuse-delay: {MEMORY_OPS} ops run one after the other on 1 CPU,"
        f" {MEMORY_MMS} mms, no PGSTE",
        "  mem, peak  pgtable pages per live 2K table (held: only pages holding a live table)",
        "  steps, ops from the start of a free until the table can be handed out again,",
        "             in kernel steps and in ops; never: still unusable at the end, RCU quiet",
        "",
    ]
    memory = [["design", "mem", "peak", "held", "steps", "max", "ops", "max", "never"]]
    for name, m in rows.items():
        star = "*" if m.stop else ""
        memory.append(
            [
                name,
                _fmt(m.memory.mean, ".2f") + star,
                _fmt(m.memory.peak, ".2f") + star,
                _fmt(m.memory.held_mean, ".2f") + star,
                _fmt(m.reuse.mean, ".1f") + star,
                _fmt(m.reuse.max, "d") + star,
                _fmt(m.reuse.mean_ops, ".2f") + star,
                _fmt(m.reuse.max_ops, "d") + star,
                str(m.reuse.never) + star,
            ]
        )
    lines += _columns(memory)
    lines += [
        "",
        "contention: lock acquisitions that spun / all acquisitions, per lock class, with",
        f"  CxM = C CPUs on M mms, each CPU running {CONTENTION_OPS_PER_CPU} ops mostly on"
        " its own mm",
        "",
    ]
    contention = [["design", "lock", *(f"{n}x{m}" for n, m in CONTENTION_CONFIGS)]]
    for name, m in rows.items():
        locks = sorted({lock for c in m.contention for lock in c.acquisitions}) or ["-"]
        for i, lock in enumerate(locks):
            contention.append(
                ["" if i else name, lock[:LOCK_WIDTH], *(_cell(c, lock) for c in m.contention)]
            )
    lines += _columns(contention, left=2)
    notes = [note for name, m in rows.items() for note in _notes(name, m)]
    if notes:
        lines += ["", "* stopped by a violation: the figures are up to that point"]
        for note in notes:
            lines += textwrap.wrap(note, WIDTH, subsequent_indent="    ", break_on_hyphens=False)
    return "\n".join(lines)


def _notes(name: str, m: Measures) -> list[str]:
    def short(message: str) -> str:
        return textwrap.shorten(message, NOTE_MESSAGE, placeholder=" ...")

    notes = [f"{name}: {u}" for u in m.unsupported]
    if m.stop:
        notes.append(f"{name}: memory workload {m.stop}: {short(m.stop.message)}")
    # A design's bug tends to stop every configuration the same way: one line each.
    stopped: dict[str, list[Contention]] = {}
    for c in m.contention:
        if c.stop:
            stopped.setdefault(c.stop.property, []).append(c)
    for prop, cs in stopped.items():
        where = ", ".join(
            f"{c.ncpus}x{c.nmms} after {_count_ops(c.stop.after_ops)}" for c in cs if c.stop
        )
        first = cs[0].stop.message if cs[0].stop else ""
        notes.append(f"{name}: contention stopped by {prop}: {where}; the first: {short(first)}")
    props = sorted(set(m.reported).union(*(c.reported for c in m.contention)))
    for prop in props:
        places = ["memory"] if prop in m.reported else []
        places += [f"{c.ncpus}x{c.nmms}" for c in m.contention if prop in c.reported]
        notes.append(f"{name}: {prop} reported, and the run went on, in: {', '.join(places)}")
    return notes
