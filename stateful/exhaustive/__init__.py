"""Bounded exhaustive checking: every scenario within a bound, every interleaving of each.

    from stateful.exhaustive import explore, parse_bound
    explorer = explore(design_cls, parse_bound("S=3,C=1,P=1"))
    explorer.result.found      # property -> its shortest counterexample
    explorer.result.complete   # True: whatever is not found is proved within the bound

bound.py     the bound and its named axes; `--bound` parsed and printed
rules.py     the machine's rules and the kinds of their arguments
trial.py     one rule call, tried on a machine replayed to a node, and the
             state it leaves (stateful/fingerprint.py, stateful/symmetry.py)
search.py    the search, shortest counterexample first, and its pruning
result.py    what it found and the counts it rests on
estimate.py  how large a bound is, before it runs
verdict.py   a property's verdict, raised as the verdict tests raise it
shard.py     one design's search split at its first setup operations, and merged
pytest_shards.py  the shards as pytest tests, and the controller's merge into the table

From pytest: `pytest --exhaustive [--bound S=3,C=1,P=1]` (or `pgfrag
--exhaustive`) runs the verdict tests on it. A design is one pytest-xdist
group (its properties share one search), so `-n N` spreads the designs over
N workers; with `--shard-depth K` each design's search is split into shards
(shard.py), each a test of its own, merged by the controller
(pytest_shards.py). Over several hosts, with xdist's own transport, the same
commit checked out on each:

    pytest --exhaustive -d --dist loadgroup \
        --tx ssh=user@host1//python=/path/to/venv/bin/python//chdir=/path/to/pgfrag \
        --tx ssh=user@host2//python=/path/to/venv/bin/python//chdir=/path/to/pgfrag
"""

from stateful.exhaustive.bound import DEFAULT as DEFAULT_BOUND
from stateful.exhaustive.bound import FIRST as FIRST_BOUND
from stateful.exhaustive.bound import Bound, BoundError, parse_bound
from stateful.exhaustive.estimate import estimate, too_large
from stateful.exhaustive.result import FOUND, PROVED, Counterexample, Result
from stateful.exhaustive.search import Explorer, Pruning, explore
from stateful.exhaustive.verdict import verdict

__all__ = [
    "DEFAULT_BOUND",
    "FIRST_BOUND",
    "FOUND",
    "PROVED",
    "Bound",
    "BoundError",
    "Counterexample",
    "Explorer",
    "Pruning",
    "Result",
    "estimate",
    "explore",
    "parse_bound",
    "too_large",
    "verdict",
]
