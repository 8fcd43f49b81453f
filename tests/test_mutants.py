"""Mutation analysis, one test per mutant: `pytest --mutants DESIGN` (or `pgfrag --mutants DESIGN`).

Not part of the default run: without `--mutants` these tests are deselected.
Each test judges one mutant with the exhaustive mode against its design's
baseline (computed once, before the workers start, and cached on disk) and
puts the verdict into its report; the controller prints the reviewer's
table and writes it as JSON, Markdown and HTML (stateful/mutants/table.py).
A test fails only when the tool itself cannot judge; a surviving mutant is
a measurement, not a failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stateful.mutants import baseline, find, judge, source_hash


def test_mutant(
    mutant_case: tuple[str, str],
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
) -> None:
    design, mutant_id = mutant_case
    config = request.config
    cls = config.pgfrag_designs[design]  # type: ignore[attr-defined]
    bound = config.pgfrag_mutant_bound  # type: ignore[attr-defined]
    mutant = find(cls, mutant_id)
    assert mutant is not None, f"{mutant_id}: derived at collection, gone now"
    folder = Path(config.getoption("replay_dir")) / "mutants"
    verdict = judge(cls, mutant, bound, baseline(cls, bound), folder, source_hash(cls))
    record_property("pgfrag_mutant", json.dumps(verdict.to_dict()))
