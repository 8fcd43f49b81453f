"""The cost measures of every design: memory, reuse-delay and contention.

    python benchmarks/measures.py                       # every design, seed 0
    python benchmarks/measures.py --seed 3 --design upstream-6.4 --design full-page-6.8

Every design runs the same fixed workloads drawn from the seed (see
stateful/measures/), so the same command prints the same table. A
workload that a design's bug stops is marked and says what stopped it.
"""

from __future__ import annotations

import argparse
import sys

from designs.registry import load_designs
from stateful.measures import COMMAND, measure, render_measures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the workloads (default 0)")
    parser.add_argument(
        "--design", action="append", default=[], metavar="NAME", help="only this design"
    )
    args = parser.parse_args(argv)
    designs = load_designs()
    unknown = [name for name in args.design if name not in designs]
    if unknown:
        parser.error(
            f"unknown design {', '.join(repr(n) for n in unknown)}; valid: "
            + ", ".join(sorted(designs))
        )
    names = [n for n in designs if not args.design or n in args.design]
    rows = {name: measure(designs[name], args.seed) for name in names}
    command = f"{COMMAND} --seed {args.seed}"
    command += "".join(f" --design {name}" for name in names if args.design)
    print(render_measures(rows, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
