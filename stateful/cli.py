"""`pgfrag`: run the design comparison and print the designs x properties table.

    pgfrag                                 every design, every property
    pgfrag --design hugh-hh --design gerald
    pgfrag --property deadlock -v          any pytest option passes through
    HYPOTHESIS_PROFILE=thorough pgfrag     the long campaign
    pgfrag --exhaustive [--bound S=3,C=1]  every interleaving within a bound
    pgfrag --report report.html            also write the report (and report.md beside it)
    pgfrag --replay FILE [--design NAME]   replay a saved failure, from any folder
    pgfrag --mutants DESIGN [--bound ...]  mutation analysis: which line prevents which race

It is pytest on tests/test_verdicts.py of the checkout this package was
installed from (`pip install -e .`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stateful.exhaustive.bound import AXES, DEFAULT, FIRST

ROOT = Path(__file__).resolve().parent.parent

USAGE = """\
usage: pgfrag [--design NAME]... [--property NAME]... [--exhaustive [--bound AXES]]
              [--report PATH.html] [--replay FILE [--design NAME]...] [pytest options]
       pgfrag --mutants DESIGN [--bound AXES] [--report PATH.html] [pytest options]

Runs every design of the s390 2K page-table fragment allocator against every
property, and prints the designs x properties table. Each design is first
explored exhaustively within a small bound, then searched at random past it.
Each found bug is shown as its shortest race diagram and saved as a replay file.

options:
  --design NAME        only this design (repeatable)
  --property NAME      only this property (repeatable)
  --exhaustive         explore every scenario within the bound and every
                       interleaving of each, instead of the random search: a cell
                       is FOUND (its shortest counterexample) or "proved ≤B"
  --bound AXES         the bound of --exhaustive, any subset of
                       {form} (default {default})
  --bound-confirm      run an --exhaustive bound estimated too large to finish soon
  --first-bound AXES   the random run's exhaustive first pass, or `none`
                       (default {first})
  --replay FILE        replay a saved failure on its design (or each --design)
                       and run nothing else
  --replay-dir DIR     where found failures are saved (default: replays/)
  --report PATH.html   also write the comparison as HTML, and Markdown beside it
  --mutants DESIGN     mutation analysis of DESIGN: every mutant of its source
                       judged by the exhaustive mode at --bound (killed by a
                       property, survived, proved equivalent, or invalid);
                       the table also goes to artifacts/mutants/DESIGN.json,
                       .md and .html (--mutants-out DIR), see docs/mutation.md
  --progress SECONDS   a progress line per design every SECONDS (0: none)
  -h, --help           this help; `pgfrag --help-pytest` lists pytest's options,
                       which pgfrag passes through (-v, -x, -n, -k, ...)

the bound's axes:
{axes}

examples:
  pgfrag                                   the comparison (random search)
  pgfrag --design hugh-hh --property deadlock -v
  pgfrag --exhaustive                      every interleaving within the default bound
  pgfrag --exhaustive --bound S=3,C=1,P=1 --design pre-c2c-5.16
  pgfrag --replay replays/hugh-hh--deadlock.json --design hugh-hh-bh
  pgfrag --mutants upstream-6.4            which line of v6.4 prevents which race
  HYPOTHESIS_PROFILE=thorough pgfrag --report report.html
"""


def usage() -> str:
    axes = "\n".join(f"  {a.key:<8}{a.meaning}" for a in AXES)
    form = ",".join(f"{a.key}=N" for a in AXES[:4]) + ",..."
    return USAGE.format(form=form, default=DEFAULT, first=FIRST, axes=axes)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(usage(), end="")
        return 0
    if "--help-pytest" in args:
        args = ["--help" if a == "--help-pytest" else a for a in args]
    tests = "test_mutants.py" if any(a.split("=")[0] == "--mutants" for a in args) else None
    verdicts = ROOT / "tests" / (tests or "test_verdicts.py")
    if not verdicts.exists():
        print(
            f"pgfrag: {verdicts} not found; install from a checkout with `pip install -e .`",
            file=sys.stderr,
        )
        return 4
    return int(pytest.main([str(verdicts), "--rootdir", str(ROOT), "-q", *args]))


if __name__ == "__main__":
    sys.exit(main())
