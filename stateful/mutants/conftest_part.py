"""The pytest wiring of `--mutants DESIGN`, kept apart from conftest.py's own.

`--mutants` is refused before anything runs when the design does not exist
(the valid names listed) or its source cannot be read (why). The design's
baseline is searched in pytest_configure of the controller, before
pytest-xdist starts its workers, which then read it from the cache; each
worker judges the mutants it is given, and the controller prints the table
and writes it (stateful/mutants/table.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stateful.mutants.baseline import ROOT, baseline
from stateful.mutants.derive import derive
from stateful.mutants.judge import Verdict
from stateful.mutants.resolve import MutantError, resolve
from stateful.mutants.source import SourceError, source_hash
from stateful.mutants.table import render_text, to_json, write_reports

OUT = ROOT / "artifacts" / "mutants"
_VERDICTS: dict[str, list[Verdict]] = {}
_STARTED = [0.0]


def addoption(group: Any) -> None:
    group.addoption(
        "--mutants",
        action="append",
        default=[],
        metavar="DESIGN",
        help="mutation analysis of DESIGN (repeatable): every mutant judged by the "
        "exhaustive mode at --bound; runs nothing else",
    )
    group.addoption(
        "--mutants-out",
        default=str(OUT),
        metavar="DIR",
        help="where --mutants writes DESIGN.json, .md and .html (default: artifacts/mutants/)",
    )


def configure(config: pytest.Config, designs: dict[str, Any]) -> None:
    names = config.getoption("mutants")
    if not names:
        return
    for name in names:
        if name not in designs:
            raise pytest.UsageError(
                f"--mutants {name!r}: no such design; valid: {', '.join(sorted(designs))}"
            )
        try:
            source_hash(designs[name])
        except SourceError as exc:
            raise pytest.UsageError(f"--mutants {name!r} refused: {exc}") from exc
    bound = config.pgfrag_bound  # type: ignore[attr-defined]
    config.pgfrag_mutant_bound = bound  # type: ignore[attr-defined]
    _STARTED[0] = time.perf_counter()
    if hasattr(config, "workerinput"):
        return  # the controller searched the baselines
    for name in names:
        start = time.perf_counter()
        base = baseline(designs[name], bound)
        sys.stderr.write(
            f"pgfrag: {name} unmutated at {bound}: {base.counts}; reaches "
            f"{', '.join(sorted(base.properties)) or 'nothing'} "
            f"({time.perf_counter() - start:.0f} s here, {base.seconds:.0f} s when searched)\n"
        )


def generate(metafunc: pytest.Metafunc) -> None:
    if "mutant_case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    designs = config.pgfrag_designs  # type: ignore[attr-defined]
    params = [
        pytest.param((name, m.id), id=m.id)
        for name in config.getoption("mutants")
        for m in derive(designs[name])
    ]
    metafunc.parametrize("mutant_case", params)


def select(config: pytest.Config, items: list[pytest.Item], drop: list[pytest.Item]) -> list[Any]:
    """With --mutants only the mutants run; without, none of them."""
    mutating = bool(config.getoption("mutants"))
    rest = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        is_mutant = callspec is not None and "mutant_case" in callspec.params
        is_mutant = is_mutant or getattr(item, "originalname", "") == "test_mutant"
        (rest if is_mutant == mutating else drop).append(item)
    return rest


def logreport(report: pytest.TestReport, props: dict[str, Any]) -> None:
    if "pgfrag_mutant" in props and report.when == "call":
        verdict = Verdict(**json.loads(str(props["pgfrag_mutant"])))
        design = verdict.id.split(":", 1)[0]
        _VERDICTS.setdefault(design, []).append(verdict)


def summary(tr: pytest.TerminalReporter) -> None:
    config = tr.config
    if hasattr(config, "workerinput") or not _VERDICTS:
        return
    bound = str(config.pgfrag_mutant_bound)  # type: ignore[attr-defined]
    designs = config.pgfrag_designs  # type: ignore[attr-defined]
    out = Path(config.getoption("mutants_out"))
    report = config.getoption("report")
    for design, verdicts in sorted(_VERDICTS.items()):
        tr.section(f"pgfrag: mutants of {design}")
        for line in render_text(design, verdicts, bound).splitlines():
            tr.write_line(line)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{design}.json"
        path.write_text(to_json(design, verdicts, bound, source_hash(designs[design])), "utf-8")
        html, md = write_reports(out / f"{design}.html", design, verdicts, bound)
        tr.write_line(f"pgfrag: written to {path}, {md} and {html}")
        if report:
            target = Path(report)
            if len(_VERDICTS) > 1:
                target = target.with_name(f"{target.stem}-{design}{target.suffix}")
            html, md = write_reports(target, design, verdicts, bound)
            tr.write_line(f"pgfrag: report written to {html} and {md}")
    everything = [v for vs in _VERDICTS.values() for v in vs]
    slow = sorted(everything, key=lambda v: -v.seconds)[:8]
    tr.write_line(
        "pgfrag: slowest judgements: "
        + ", ".join(f"{v.id} {v.kind} {v.seconds:.0f} s" for v in slow)
    )
    seconds = sum(v.seconds for v in everything)
    tr.write_line(
        f"pgfrag: {sum(len(v) for v in _VERDICTS.values())} mutants judged in "
        f"{time.perf_counter() - _STARTED[0]:.0f} s (the judgements: {seconds:.0f} s of CPU)"
    )


def replay_design(replay: Any, design: str, cls: Any) -> Any:
    """The class a replay file runs on: its mutant, re-created, when it names one
    and is replayed on its own design; else the design as it is."""
    if not replay.mutant or design != replay.design:
        return cls
    return resolve(cls, replay.mutant, replay.design_source)


def check_replay(replay: Any, path: str, designs: dict[str, Any]) -> None:
    """A mutant's replay file is checked before anything runs."""
    if not replay.mutant or replay.design not in designs:
        return
    try:
        resolve(designs[replay.design], replay.mutant, replay.design_source)
    except MutantError as exc:
        raise pytest.UsageError(f"pgfrag: replay file {path}: {exc}") from exc
