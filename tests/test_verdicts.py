"""One test per (design, property): the verdict matrix; and `--replay FILE`.

A design's `known` entries are xfail(strict=True, raises=<the property's
exception>), so the run is green only when the machine finds every known
bug and nothing else. Each design is searched once (a survey, see
stateful/hunt.py); each property's test then raises the minimal
counterexample of that property if the survey found one, and saves it as a
replay file (stateful/replay_file.py).

`test_replay` runs only under `--replay FILE`: it replays the file on its
design (or each `--design`) and fails while the violation still happens,
or when a step cannot run there (then it is not the recorded interleaving).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

from stateful.hunt import explain, survey, verdict
from stateful.machine import FAILURES, Survey
from stateful.replay_file import ReplayFile, check_replay, save_replay
from stateful.violations import Violation

_SURVEYS: dict[str, Survey] = {}


def _shown(path: Path, root: Path) -> str:
    """A path as a developer would type it from the project folder."""
    path = path.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


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
            record_property("pgfrag_bug", (failure.message, failure.diagram))
            folder = Path(request.config.getoption("replay_dir"))
            saved = save_replay(ReplayFile.of(failure), folder)
            record_property("pgfrag_replay_file", _shown(saved, request.config.rootpath))
        raise


def test_replay(
    replay_case: tuple[Path, ReplayFile, str],
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
) -> None:
    path, replay, design = replay_case
    cls = request.config.pgfrag_designs[design]  # type: ignore[attr-defined]
    check = check_replay(path, replay, cls)
    record_property("pgfrag_replayed", check.summary())
    if check.violation is not None:
        raise type(check.violation)(f"{check.summary()}\n\n{check.diagram}")
    if check.other is not None:
        raise type(check.other)(f"{check.summary()}\n\n{check.diagram}")
    if not check.as_recorded:
        pytest.fail(check.summary(), pytrace=False)
