"""One test per (design, property): the verdict matrix; and `--replay FILE`.

A design's `known` entries are xfail(strict=True, raises=<the property's
exception>), so the run is green only when the machine finds every known
bug and nothing else. Each design is searched once (a survey, see
stateful/hunt.py); each property's test then raises the minimal
counterexample of that property if the survey found one, and saves it as a
replay file (stateful/replay_file.py).

Without `--exhaustive`, each design is first searched exhaustively within
a small bound (`--first-bound`, stateful/exhaustive/bound.py FIRST): what
it finds is raised with its shortest counterexample, and the random survey
then reaches past it. Under `--exhaustive`, each design is searched once
by the bounded exhaustive search instead (stateful/exhaustive/): a property's test raises
its shortest counterexample within the bound, or passes, and the cell says
"proved ≤B": no interleaving of any scenario within the bound violates it.

`test_replay` runs only under `--replay FILE`: it replays the file on its
design (or each `--design`) and fails while the violation still happens,
or when a step cannot run there (then it is not the recorded interleaving).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

from designs.base import Design
from stateful import exhaustive
from stateful.exhaustive import Bound, Result, pytest_shards, shard
from stateful.hunt import explain, survey, verdict
from stateful.machine import FAILURES, Survey
from stateful.mutants import conftest_part as mutants
from stateful.progress import PROGRESS
from stateful.replay_file import ReplayFile, check_replay, save_replay, shown_path
from stateful.violations import Violation

_SURVEYS: dict[str, Survey] = {}
_EXHAUSTIVE: dict[str, Result] = {}


def test_verdict(
    verdict_case: tuple[str, str],
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
) -> None:
    design, prop = verdict_case
    cls = request.config.pgfrag_designs[design]  # type: ignore[attr-defined]
    bound = request.config.pgfrag_bound  # type: ignore[attr-defined]
    if bound is not None:
        _exhaustive_verdict(cls, prop, bound, request, record_property)
        return
    first = request.config.pgfrag_first_bound  # type: ignore[attr-defined]
    if design not in _SURVEYS:
        _SURVEYS[design] = survey(cls, settings())
    found = _SURVEYS[design]
    ended = ", ".join(f"{p} {n}" for p, n in found.ended_by.most_common()) or "none"
    line = f"{found.examples} runs, {found.clean} drained clean; reports: {ended}"
    if first is not None:
        _first_pass(cls, first)
        line = f"first pass ≤B: {_EXHAUSTIVE[design].counts()}; random: {line}"
    record_property("pgfrag_survey", line)
    if first is not None:
        _exhaustive_verdict(cls, prop, first, request, record_property, counts=False)
    try:
        verdict(cls, prop, found)
    except Violation:
        _record_failure(design, prop, None, request, record_property)
        raise


def _first_pass(cls: type[Design], bound: Bound) -> Result:
    """The design's exhaustive search within bound, run once per process."""
    if cls.name not in _EXHAUSTIVE:
        talk = PROGRESS.write if PROGRESS.every > 0 else None
        explorer = exhaustive.explore(cls, bound, progress=talk, progress_every=PROGRESS.every)
        _EXHAUSTIVE[cls.name] = explorer.result
    return _EXHAUSTIVE[cls.name]


def _exhaustive_verdict(
    cls: type[Design],
    prop: str,
    bound: Bound,
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
    counts: bool = True,
) -> None:
    """Raise prop's shortest counterexample within bound; record the search's
    counts (a first pass records them with the survey's)."""
    design = cls.name
    result = _first_pass(cls, bound)
    if counts:
        record_property("pgfrag_survey", f"exhaustive ≤B: {result.counts()}")
    try:
        exhaustive.verdict(cls, prop, result)
    except Violation:
        found = result.found[prop]
        headline = f"shortest within B: {found.describe()}"
        _record_failure(design, prop, bound, request, record_property, headline)
        raise


def _record_failure(
    design: str,
    prop: str,
    bound: Bound | None,
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
    headline: str = "",
) -> None:
    """The failure just raised: its diagram for the summary, and its replay file."""
    failure = FAILURES.get((design, prop))
    if failure is None:
        return
    record_property("pgfrag_explanation", f"{headline}\n{explain(failure)}".strip())
    record_property("pgfrag_bug", (failure.message, failure.diagram))
    folder = Path(request.config.getoption("replay_dir"))
    machine = bound.machine_config() if bound is not None else None
    saved = save_replay(ReplayFile.of(failure, machine), folder)
    record_property("pgfrag_replay_file", shown_path(saved, request.config.rootpath))


def test_replay(
    replay_case: tuple[Path, ReplayFile, str],
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
) -> None:
    path, replay, design = replay_case
    cls = request.config.pgfrag_designs[design]  # type: ignore[attr-defined]
    cls = mutants.replay_design(replay, design, cls)
    check = check_replay(path, replay, cls)
    record_property("pgfrag_replayed", check.summary())
    if check.violation is not None:
        raise type(check.violation)(f"{check.summary()}\n\n{check.diagram}")
    if check.other is not None:
        raise type(check.other)(f"{check.summary()}\n\n{check.diagram}")
    if not check.as_recorded:
        pytest.fail(check.summary(), pytrace=False)


def test_exhaustive_shard(
    shard_case: tuple[str, int],
    request: pytest.FixtureRequest,
    record_property: Callable[[str, object], None],
) -> None:
    """One shard of a design's search (`--exhaustive --shard-depth K`): its
    findings go to the controller, which merges the shards into the table."""
    design, number = shard_case
    cls = request.config.pgfrag_designs[design]  # type: ignore[attr-defined]
    parts, _ = pytest_shards.plan(request.config, design)
    result = shard.search(cls, parts[number])
    assert result.complete
    record_property("pgfrag_shard", pytest_shards.to_record(design, number, result))
