"""One test per (design, property): the verdict matrix.

A design's `known` entries are xfail(strict=True, raises=<the property's
exception>), so the run is green only when the machine finds every known
bug and nothing else. Each design is searched once (a survey, see
stateful/hunt.py); each property's test then raises the minimal
counterexample of that property if the survey found one.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import settings

from stateful.hunt import explain, survey, verdict
from stateful.machine import FAILURES, Survey
from stateful.violations import Violation

_SURVEYS: dict[str, Survey] = {}


def test_verdict(
    verdict_case: tuple[str, str],
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
) -> None:
    design, prop = verdict_case
    cls = request.config.pgfrag_designs[design]  # type: ignore[attr-defined]
    if design not in _SURVEYS:
        _SURVEYS[design] = survey(cls, settings())
    found = _SURVEYS[design]
    ended = ", ".join(f"{p} {n}" for p, n in found.ended_by.most_common()) or "none"
    record_property(
        "pgfrag_survey", f"{found.examples} runs, {found.clean} drained clean; reports: {ended}"
    )
    try:
        verdict(cls, prop, found)
    except Violation:
        failure = FAILURES.get((design, prop))
        if failure is not None:
            record_property("pgfrag_explanation", explain(failure))
        raise
