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

# What the memory columns mean, said once: the text table and the report (stateful/report.py)
# both print it.
MEMORY_WORKLOAD = (
    f"memory and reuse-delay: {MEMORY_OPS} ops run one after the other on 1 CPU,"
    f" {MEMORY_MMS} mms, no PGSTE"
)
MEMORY_COLUMNS = ("mem", "peak", "held", "steps", "max", "ops", "max", "never")
# (columns, meaning): the meaning is kept in the lines the text table breaks it into,
# so that the table stays as it was; a report that reflows it joins them.
MEMORY_LEGEND: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mem, peak", ("pgtable pages per live 2K table (held: only pages holding a live table)",)),
    (
        "steps, ops",
        (
            "from the start of a free until the table can be handed out again,",
            "in kernel steps and in ops; never: still unusable at the end, RCU quiet",
        ),
    ),
)
STOPPED = "* stopped by a violation: the figures are up to that point"
_LEGEND_LABEL = max(len(columns) for columns, _ in MEMORY_LEGEND)


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


def measures_seed(rows: Mapping[str, Measures]) -> int:
    """The one seed of rows (0 for none): figures of different seeds do not go in one table."""
    seeds = sorted({m.seed for m in rows.values()})
    if len(seeds) > 1:
        raise ValueError(f"rows measured with different seeds {seeds}: one table, one seed")
    return seeds[0] if seeds else 0


def memory_cells(m: Measures) -> list[str]:
    """The MEMORY_COLUMNS of one design, each marked `*` if a violation stopped the workload."""
    star = "*" if m.stop else ""
    return [
        _fmt(m.memory.mean, ".2f") + star,
        _fmt(m.memory.peak, ".2f") + star,
        _fmt(m.memory.held_mean, ".2f") + star,
        _fmt(m.reuse.mean, ".1f") + star,
        _fmt(m.reuse.max, "d") + star,
        _fmt(m.reuse.mean_ops, ".2f") + star,
        _fmt(m.reuse.max_ops, "d") + star,
        str(m.reuse.never) + star,
    ]


def render_contention(rows: Mapping[str, Measures]) -> str:
    """The contention part of the table: what it counts, then one line per design and lock."""
    lines = [
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
    return "\n".join(lines)


def render_measures(rows: Mapping[str, Measures], command: str | None = None) -> str:
    """The measures of each design, at most WIDTH columns, after the command that makes them."""
    seed = measures_seed(rows)
    lines = [f"$ {command or f'{COMMAND} --seed {seed}'}", MEMORY_WORKLOAD]
    for columns, meaning in MEMORY_LEGEND:
        label = columns.ljust(_LEGEND_LABEL)
        lines += [f"  {label} {meaning[0]}", *(f"  {'':{_LEGEND_LABEL}} {m}" for m in meaning[1:])]
    lines.append("")
    memory = [["design", *MEMORY_COLUMNS]]
    memory += [[name, *memory_cells(m)] for name, m in rows.items()]
    lines += _columns(memory)
    lines += ["", *render_contention(rows).split("\n")]
    notes = [note for name, m in rows.items() for note in measure_notes(name, m)]
    if notes:
        lines += ["", STOPPED]
        for note in notes:
            lines += textwrap.wrap(note, WIDTH, subsequent_indent="    ", break_on_hyphens=False)
    return "\n".join(lines)


def measure_notes(name: str, m: Measures) -> list[str]:
    """What stopped or marked the workloads of one design, one line each (the `*` of the table)."""

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
