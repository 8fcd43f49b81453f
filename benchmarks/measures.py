"""The cost measures of every design: memory, reuse-delay and contention; and memory waste.

    python benchmarks/measures.py                       # every design, seed 0
    python benchmarks/measures.py --seed 3 --design upstream-6.4 --design full-page-6.8
    python benchmarks/measures.py --workload churn --workload collapse   # memory waste
    python benchmarks/measures.py --workload grow --plots docs/plots     # and its plot, as SVG

Every design runs the same fixed workloads drawn from the seed (see
stateful/measures/), so the same command prints the same table. A
workload that a design's bug stops is marked and says what stopped it.
With --workload, the memory-waste workloads named run instead (by default
on the designs the comparison is about, WASTE_DESIGNS), each a table of
pgtable pages per live 2K table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from designs.registry import load_designs
from stateful.measures import (
    COMMAND,
    WASTE_DESIGNS,
    WASTE_WORKLOADS,
    measure,
    measure_wastes,
    render_measures,
    render_waste,
    waste_command,
)
from stateful.measures.plot import waste_svg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the workloads (default 0)")
    parser.add_argument(
        "--design", action="append", default=[], metavar="NAME", help="only this design"
    )
    parser.add_argument(
        "--workload",
        action="append",
        default=[],
        metavar="NAME",
        help="a memory-waste workload instead of the cost table; valid: "
        + ", ".join(WASTE_WORKLOADS),
    )
    parser.add_argument(
        "--plots",
        metavar="DIR",
        help="with --workload: also write DIR/waste-NAME.svg, the report's plot of each",
    )
    args = parser.parse_args(argv)
    if args.plots and not args.workload:
        parser.error("--plots draws the --workload tables: name at least one workload")
    designs = load_designs()
    unknown = [name for name in args.design if name not in designs]
    if unknown:
        parser.error(
            f"unknown design {', '.join(repr(n) for n in unknown)}; valid: "
            + ", ".join(sorted(designs))
        )
    bad = [name for name in args.workload if name not in WASTE_WORKLOADS]
    if bad:
        parser.error(
            f"unknown workload {', '.join(repr(n) for n in bad)}; valid: "
            + ", ".join(WASTE_WORKLOADS)
        )
    if args.workload:
        wanted = args.design or [d for d in WASTE_DESIGNS if d in designs]
        chosen = {name: designs[name] for name in wanted}
        workloads = list(dict.fromkeys(args.workload))
        series = measure_wastes(chosen, workloads, args.seed)
        print(f"$ {waste_command(workloads, args.seed, args.design)}")
        print(render_waste(series))
        if args.plots:
            folder = Path(args.plots)
            folder.mkdir(parents=True, exist_ok=True)
            for w in workloads:
                svg = waste_svg(w, [s for s in series if s.workload == w], standalone=True)
                (folder / f"waste-{w}.svg").write_text(svg + "\n", encoding="utf-8", newline="\n")
        return 0
    names = [n for n in designs if not args.design or n in args.design]
    rows = {name: measure(designs[name], args.seed) for name in names}
    command = f"{COMMAND} --seed {args.seed}"
    command += "".join(f" --design {name}" for name in names if args.design)
    print(render_measures(rows, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
