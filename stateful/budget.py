"""The default profile's random budget, one number for the run and for the
benchmarks that measure its power (benchmarks/find_speed.py).

The exhaustive first pass covers the short races; the random survey reaches
past its bound. 3,000 examples keep the default `pytest` under ten minutes
on 2 cores; the power table at this budget is in the README.
"""

from __future__ import annotations

DEFAULT_EXAMPLES = 3_000
DEFAULT_STEPS = 40
