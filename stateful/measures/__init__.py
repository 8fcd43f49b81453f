"""The cost measures: every design run on the same fixed, seeded workloads.

Verdicts say whether a design is correct; these say what it costs.

- memory: pgtable pages per live 2K table, sampled after every operation of
  one fixed operation list (`memory_workload(seed)`), the same for every design;
- reuse-delay: from the start of the operation that frees a 2K table until
  that half could be handed out again (its page went back to the page
  allocator, or it is on a live pgtable_list with its AA, PP and HH bits
  clear), in kernel steps (`World.steps`) and in operations of the workload;
- contention: lock acquisitions that had to spin, per lock class, with 2 and
  4 CPUs on 1 and 4 mms, each CPU running its own seeded stream of operations.

Everything is drawn from `random.Random` seeded with the seed, so the figures
are reproducible: `python benchmarks/measures.py --seed N` prints them.
A violation does not crash a measure: it stops that workload, and the result
says which property stopped it after how many operations.

One concept per module, each importing only those above it:

    workloads   the seeded operation lists and their Op
    results     the figures a measure gives (Measures, Memory, ...)
    harness     the World under measure and what both runs share
    reuse       when a freed table could be handed out again
    memory      the memory and reuse-delay run
    contention  the contention run
    run         measure(): one design through every workload
    render      the table, and its parts for the report (stateful/report.py)

The memory-waste workloads (churn, collapse, forkexit, grow), per design a
time series of pages per live 2K table:

    waste_workloads  the seeded operation lists
    waste            the run (the memory run, with fork and exit) and WasteSeries
    waste_render     the table, for the terminal and the Markdown
    plot             one workload's plot, as SVG (matplotlib)
    waste_html       the report's section: the plots and the tables
"""

from __future__ import annotations

from stateful.measures.render import (
    COMMAND,
    MEMORY_COLUMNS,
    MEMORY_LEGEND,
    MEMORY_WORKLOAD,
    STOPPED,
    measure_notes,
    measures_seed,
    memory_cells,
    render_contention,
    render_measures,
)
from stateful.measures.results import Measures
from stateful.measures.run import measure
from stateful.measures.waste import WASTE_DESIGNS, WasteSeries, measure_waste, measure_wastes
from stateful.measures.waste_render import render_waste, waste_command
from stateful.measures.waste_workloads import WASTE_WORKLOADS
from stateful.measures.workloads import (
    CONTENTION_CONFIGS,
    MEMORY_GP_EVERY,
    MEMORY_OPS,
    contention_streams,
    memory_workload,
)

__all__ = [
    "COMMAND",
    "CONTENTION_CONFIGS",
    "MEMORY_COLUMNS",
    "MEMORY_GP_EVERY",
    "MEMORY_LEGEND",
    "MEMORY_OPS",
    "MEMORY_WORKLOAD",
    "STOPPED",
    "WASTE_DESIGNS",
    "WASTE_WORKLOADS",
    "WasteSeries",
    "Measures",
    "contention_streams",
    "measure",
    "measure_notes",
    "measure_waste",
    "measure_wastes",
    "measures_seed",
    "memory_cells",
    "memory_workload",
    "render_contention",
    "render_measures",
    "render_waste",
    "waste_command",
]
