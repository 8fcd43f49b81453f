"""Where a pause or an interrupt may fall in an operation: the random search's scale.

Operations are short, and a point past an operation's end is wasted (it
runs atomically), so the points are drawn on a roughly logarithmic scale,
the small ones twice. The minimizer raises an argument no further than the
largest: past it, it would ask for a run the search never makes.
"""

from __future__ import annotations

POINTS: tuple[int, ...] = (1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 10, 13)
LARGEST = max(POINTS)
