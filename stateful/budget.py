"""The default profile's random budget, one number for the run and for the
benchmarks that measure its power (benchmarks/find_speed.py).

The exhaustive first pass covers the short races; the random survey reaches
past its bound. 6,000 examples of the random scheduler (stateful/scheduler.py)
keep the default `pytest` under ten minutes on 2 cores and find every known
bug in 10 of 10 fresh seeds; the power table at this budget is in the README.
"""

from __future__ import annotations

DEFAULT_EXAMPLES = 6_000
DEFAULT_STEPS = 40
