"""Mutation analysis: which line of a design prevents which race.

    from stateful.mutants import derive, baseline, judge
    base = baseline(design_cls, bound)            # the design's own search, cached
    for mutant in derive(design_cls):             # every operator at every site
        verdict = judge(design_cls, mutant, bound, base, replay_dir, source_hash(design_cls))

source.py     the design's generator methods, read with ast (inherited ones included)
operators.py  the mutation operators over one method's AST
derive.py     every mutant of a design, with its stable ID design:method:line:operator
build.py      a mutant design class, compiled from the mutated source
baseline.py   the design's own exhaustive search: properties, end states, lines run
judge.py      one mutant judged: killed, survived, proved equivalent, or invalid
scenario.py   whether the design passes the scenario of a mutant's violation
table.py      the reviewer's table: terminal, JSON, Markdown and HTML
resolve.py    a mutant re-created from its ID, for a replay file

From the command line: `pgfrag --mutants DESIGN` (or `pytest --mutants
DESIGN`), one test per mutant, so that pytest-xdist shards them.
"""

from stateful.mutants.baseline import Baseline, baseline
from stateful.mutants.build import mutant_class
from stateful.mutants.derive import Mutant, derive, find
from stateful.mutants.judge import EQUIVALENT, INVALID, KILLED, SURVIVED, Verdict, judge
from stateful.mutants.resolve import resolve
from stateful.mutants.source import SourceError, methods, source_hash

__all__ = [
    "EQUIVALENT",
    "INVALID",
    "KILLED",
    "SURVIVED",
    "Baseline",
    "Mutant",
    "SourceError",
    "Verdict",
    "baseline",
    "derive",
    "find",
    "judge",
    "methods",
    "mutant_class",
    "resolve",
    "source_hash",
]
