"""`pgfrag`: run the design comparison and print the designs x properties table.

    pgfrag                                 every design, every property
    pgfrag --design hugh-hh --design gerald
    pgfrag --property deadlock -v          any pytest option passes through
    HYPOTHESIS_PROFILE=thorough pgfrag     the long campaign
    pgfrag --report report.html            also write the report (and report.md beside it)
    pgfrag --replay FILE [--design NAME]   replay a saved failure, from any folder

It is pytest on tests/test_verdicts.py of the checkout this package was
installed from (`pip install -e .`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    verdicts = ROOT / "tests" / "test_verdicts.py"
    if not verdicts.exists():
        print(
            f"pgfrag: {verdicts} not found; install from a checkout with `pip install -e .`",
            file=sys.stderr,
        )
        return 4
    args = list(sys.argv[1:] if argv is None else argv)
    return int(pytest.main([str(verdicts), "--rootdir", str(ROOT), "-q", *args]))


if __name__ == "__main__":
    sys.exit(main())
