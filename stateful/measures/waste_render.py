"""The memory-waste table: one per workload, one row per design, for the terminal and the report."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from stateful.measures.render import WIDTH, _columns, _fmt
from stateful.measures.waste import WasteSeries
from stateful.measures.waste_workloads import WASTE_GP_EVERY, WASTE_OPS, WASTE_WORKLOADS

WASTE_COMMAND = "python benchmarks/measures.py"
WASTE_COLUMNS = ("mean", "peak", "end", "used")
WASTE_LEGEND = (
    "mean, peak, end: pgtable pages per live 2K table, after every op; end: once RCU is quiet",
    "used: live 2K tables per 2K half held, 1/(2 x mean); 50% is one 4K page per table",
)


def waste_command(workloads: Sequence[str], seed: int, designs: Sequence[str] = ()) -> str:
    return (
        f"{WASTE_COMMAND} --seed {seed}"
        + "".join(f" --workload {w}" for w in workloads)
        + "".join(f" --design {d}" for d in designs)
    )


def workload_heading(workload: str) -> str:
    w = WASTE_WORKLOADS[workload]
    return (
        f"{workload}: {w.what}; {WASTE_OPS} ops after its setup, 1 CPU, "
        f"a grace period every {WASTE_GP_EVERY} ops"
    )


def waste_cells(s: WasteSeries) -> list[str]:
    star = "*" if s.stop else ""
    used = "-" if s.used is None else f"{s.used:.0%}"
    return [
        _fmt(s.mean, ".3f") + star,
        _fmt(s.peak, ".3f") + star,
        _fmt(s.end, ".3f") + star,
        used + star,
    ]


def waste_notes(s: WasteSeries) -> list[str]:
    notes = []
    if s.substituted:
        notes.append(f"{s.design}: no pte_free_defer; ran munmap instead ({s.substituted} times)")
    if s.stop:
        notes.append(f"{s.design}: {s.stop}: {textwrap.shorten(s.stop.message, 120)}")
    for prop in s.reported:
        notes.append(f"{s.design}: {prop} reported, and the run went on")
    return notes


def render_workload(rows: Sequence[WasteSeries]) -> str:
    """One workload's table, each design a row, and its notes."""
    lines = _columns([["design", *WASTE_COLUMNS], *([s.design, *waste_cells(s)] for s in rows)])
    for note in (n for s in rows for n in waste_notes(s)):
        lines += textwrap.wrap(note, WIDTH, subsequent_indent="    ")
    return "\n".join(lines)


def render_waste(series: Sequence[WasteSeries]) -> str:
    """The tables of every workload in `series`, in the order first met."""
    lines = list(WASTE_LEGEND)
    for workload in dict.fromkeys(s.workload for s in series):
        rows = [s for s in series if s.workload == workload]
        heading = textwrap.wrap(workload_heading(workload), WIDTH, subsequent_indent="  ")
        lines += ["", *heading, "", render_workload(rows)]
    return "\n".join(lines)
