"""pytest wiring: options, Hypothesis profiles, and the designs x properties table.

pytest                                   every design against every property
pytest --design hugh-hh --property deadlock
HYPOTHESIS_PROFILE=thorough pytest tests/test_verdicts.py
pytest --exhaustive [--bound S=3,C=1,P=1]  every interleaving within a bound, instead
pytest --mutants upstream-6.4             mutation analysis (stateful/mutants/), not by default
"""

from __future__ import annotations

import os
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

from designs.base import DesignError
from designs.registry import load_designs
from stateful.budget import DEFAULT_EXAMPLES, DEFAULT_STEPS
from stateful.example_db import ENV as SHARED_DB_ENV
from stateful.example_db import SharedDatabaseError, example_database
from stateful.exhaustive import (
    DEFAULT_BOUND,
    FIRST_BOUND,
    PROVED,
    BoundError,
    parse_bound,
    pytest_shards,
    too_large,
)
from stateful.measures import (
    WASTE_DESIGNS,
    measure,
    measure_wastes,
    render_contention,
    render_measures,
    render_waste,
)
from stateful.mutants import conftest_part as mutants
from stateful.progress import PROGRESS
from stateful.replay_file import ReplayError, ReplayFile, load_replay, save_replay, shown_path
from stateful.report import FoundBug, ReportData, write_report
from stateful.trace import DIAGRAM_WIDTH
from stateful.violations import PROPERTIES, Violation

ROOT = Path(__file__).parent

_COMMON = dict(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
    print_blob=False,
)
# The project folder's database, and a team's shared one (stateful/example_db.py).
try:
    _THOROUGH_DB = example_database(ROOT, os.environ.get(SHARED_DB_ENV))
    _DB_ERROR = ""
except SharedDatabaseError as exc:
    _THOROUGH_DB, _DB_ERROR = example_database(ROOT), str(exc)

# CI: the same examples every run. The survey never fails inside Hypothesis
# (pgfrag minimizes what it records), so there is no shrink phase to pay for.
settings.register_profile(
    "default",
    max_examples=DEFAULT_EXAMPLES,
    stateful_step_count=DEFAULT_STEPS,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    **_COMMON,
)
settings.register_profile(
    "thorough",
    max_examples=30000,
    stateful_step_count=60,
    derandomize=False,
    database=_THOROUGH_DB,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    **_COMMON,
)
# For the project's own tests of the plumbing (plugins, the CLI): seconds, not verdicts.
settings.register_profile(
    "smoke",
    max_examples=30,
    stateful_step_count=20,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    **_COMMON,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pgfrag")
    group.addoption(
        "--design",
        action="append",
        default=[],
        metavar="NAME",
        help="only this design (repeatable)",
    )
    group.addoption(
        "--property",
        action="append",
        default=[],
        metavar="NAME",
        help="only this property (repeatable)",
    )
    group.addoption(
        "--replay",
        action="append",
        default=[],
        metavar="FILE",
        help="replay a saved failure on its design, or on each --design; runs nothing else",
    )
    group.addoption(
        "--progress",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="a progress line per design every SECONDS while it is searched (0: none)",
    )
    group.addoption(
        "--report",
        default=None,
        metavar="PATH.html",
        help="also write the comparison as an HTML report, and its Markdown beside it",
    )
    group.addoption(
        "--first-bound",
        default=None,
        metavar="AXES|none",
        help=(
            "the bound the random run first explores exhaustively, each design "
            f"(default {FIRST_BOUND}; under the smoke profile none); none: random search only"
        ),
    )
    group.addoption(
        "--exhaustive",
        action="store_true",
        default=False,
        help="explore every scenario within the bound and every interleaving of each, "
        "instead of the random search: a cell is FOUND (shortest counterexample) or "
        "'proved ≤B'",
    )
    group.addoption(
        "--bound",
        default=None,
        metavar="S=N,C=N,P=N,...",
        help=f"the bound of --exhaustive (default {DEFAULT_BOUND}; any subset of the axes)",
    )
    group.addoption(
        "--bound-confirm",
        action="store_true",
        default=False,
        help="run an --exhaustive bound that is estimated too large to finish soon",
    )
    mutants.addoption(group)
    pytest_shards.addoption(group)
    group.addoption(
        "--replay-dir",
        default=str(ROOT / "replays"),
        metavar="DIR",
        help="where every shrunk failure is saved as a replay file (default: replays/)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if _DB_ERROR:
        raise pytest.UsageError(f"pgfrag: {_DB_ERROR}")
    try:
        designs = load_designs()
    except DesignError as exc:
        raise pytest.UsageError(f"pgfrag: {exc}") from exc
    for name in config.getoption("design"):
        if name not in designs:
            raise pytest.UsageError(
                f"--design {name!r}: no such design; valid: {', '.join(sorted(designs))}"
            )
    for name in config.getoption("property"):
        if name not in PROPERTIES:
            raise pytest.UsageError(
                f"--property {name!r}: no such property; valid: {', '.join(PROPERTIES)}"
            )
    config.pgfrag_designs = designs  # type: ignore[attr-defined]
    config.pgfrag_bound = _bound(config, designs)  # type: ignore[attr-defined]
    config.pgfrag_first_bound = _first_bound(config)  # type: ignore[attr-defined]
    _show_progress(config)
    report = config.getoption("report")
    if report and Path(report).suffix.lower() == ".md":
        # Found now, not after a six-minute run: the Markdown is written beside the HTML.
        raise pytest.UsageError(
            f"--report {report}: give the HTML file (e.g. report.html); "
            "the Markdown is written beside it"
        )
    replays = []
    for name in config.getoption("replay"):
        try:
            replay = load_replay(Path(name))
        except ReplayError as exc:
            raise pytest.UsageError(f"pgfrag: {exc}") from exc
        if not config.getoption("design") and replay.design not in designs:
            raise pytest.UsageError(
                f"pgfrag: replay file {name}: recorded on design {replay.design!r}, which "
                f"does not exist here; valid: {', '.join(sorted(designs))} "
                f"(or name one with --design)"
            )
        mutants.check_replay(replay, name, designs)
        replays.append((Path(name), replay))
    config.pgfrag_replays = replays  # type: ignore[attr-defined]
    mutants.configure(config, designs)
    pytest_shards.depth(config)  # a bad --shard-depth is refused before anything runs


def _bound(config: pytest.Config, designs: dict[str, Any]) -> Any:
    """The --exhaustive bound, checked before anything runs; None without --exhaustive."""
    text = config.getoption("bound")
    if not config.getoption("exhaustive") and not config.getoption("mutants"):
        if text is not None:
            raise pytest.UsageError("--bound is the bound of --exhaustive; give both")
        return None
    try:
        bound = parse_bound(text) if text is not None else DEFAULT_BOUND
    except BoundError as exc:
        raise pytest.UsageError(f"pgfrag: {exc}") from exc
    if config.getoption("replay"):
        return bound
    chosen = [designs[d] for d in config.getoption("design") or designs]
    refusal = too_large(chosen, bound)
    if refusal and not config.getoption("bound_confirm"):
        raise pytest.UsageError(f"pgfrag: {refusal}; run it anyway with --bound-confirm")
    return bound


def _first_bound(config: pytest.Config) -> Any:
    """The random run's exhaustive first pass; None under --exhaustive, or when switched off."""
    text = config.getoption("first_bound")
    if config.getoption("exhaustive"):
        if text is not None:
            raise pytest.UsageError("--first-bound is the random run's; --exhaustive has --bound")
        return None
    if text is None:
        # The project's own plumbing tests run pgfrag in seconds, on the smoke profile.
        return None if settings.get_current_profile_name() == "smoke" else FIRST_BOUND
    if text.strip().lower() == "none":
        return None
    try:
        return parse_bound(text, FIRST_BOUND)
    except BoundError as exc:
        raise pytest.UsageError(f"pgfrag: --first-bound: {exc}") from exc


def _show_progress(config: pytest.Config) -> None:
    """Progress lines go past pytest's capture (a pytest-xdist worker's stderr
    is the controller's terminal)."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def write(line: str) -> None:
        with capture.global_and_fixture_disabled():
            sys.stderr.write(f"\n{line}\n")
            sys.stderr.flush()

    PROGRESS.write = write if capture is not None else None
    PROGRESS.every = config.getoption("progress")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    mutants.generate(metafunc)
    if "replay_case" in metafunc.fixturenames:
        cases = [
            pytest.param((path, replay, design), id=f"{path.name}@{design}")
            for path, replay in config.pgfrag_replays  # type: ignore[attr-defined]
            for design in config.getoption("design") or [replay.design]
        ]
        metafunc.parametrize("replay_case", cases)
    pytest_shards.generate(
        metafunc,
        config.getoption("design") or list(config.pgfrag_designs),  # type: ignore[attr-defined]
    )
    if "verdict_case" not in metafunc.fixturenames:
        return
    designs = config.pgfrag_designs  # type: ignore[attr-defined]
    want_designs = config.getoption("design") or list(designs)
    want_props = config.getoption("property") or list(PROPERTIES)
    params = []
    for name in want_designs:
        cls = designs[name]
        for prop in want_props:
            marks: list[pytest.MarkDecorator] = []
            if prop == "early-reuse" and not cls.supports_defer:
                marks.append(pytest.mark.skip(reason="not applicable: no pte_free_defer"))
            elif prop in cls.known:
                marks.append(
                    pytest.mark.xfail(strict=True, raises=PROPERTIES[prop], reason=cls.known[prop])
                )
            # One worker surveys a design once and judges all its properties.
            marks.append(pytest.mark.xdist_group(name))
            params.append(pytest.param((name, prop), marks=marks, id=f"{name}:{prop}"))
    metafunc.parametrize("verdict_case", params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--replay` runs the replays and nothing else; without it, there are none."""
    replaying = bool(config.getoption("replay"))
    keep, drop = [], []
    for item in pytest_shards.select(config, mutants.select(config, items, drop), drop):
        callspec = getattr(item, "callspec", None)
        is_replay = getattr(item, "originalname", "") == "test_replay"
        has_case = callspec is not None and "replay_case" in callspec.params
        (keep if (is_replay and has_case) == replaying else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Put the verdict into the report itself: under pytest-xdist the table is
    drawn by the controller, which sees only the reports the workers send."""
    report = yield
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("verdict_case") if callspec else None
    if case is None:
        return report
    design, prop = case
    known = prop in item.config.pgfrag_designs[design].known  # type: ignore[attr-defined]
    result = None
    if report.when == "setup" and report.skipped and not hasattr(report, "wasxfail"):
        result = "n/a"
    elif report.when == "call":
        if hasattr(report, "wasxfail"):
            result = "FOUND" if report.skipped else "MISSED"
        elif report.failed and call.excinfo and not call.excinfo.errisinstance(Violation):
            result = "ERROR"  # a crash, not a property: the design or pgfrag has a bug
        elif report.failed:
            result = "MISSED" if known else "NEW BUG"
        elif item.config.getoption("exhaustive") or item.config.pgfrag_first_bound:  # type: ignore[attr-defined]
            result = PROVED  # the search within the bound was complete: see test_verdicts.py
        else:
            result = "held"
    if result is not None:
        report.user_properties.append(("pgfrag_result", (design, prop, result)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    props = dict(report.user_properties)
    mutants.logreport(report, props)
    pytest_shards.logreport(report, props)
    if "pgfrag_replayed" in props and report.when == "call":
        _REPLAYED.append(str(props["pgfrag_replayed"]))
    if "pgfrag_result" not in props:
        return
    design, prop, result = props["pgfrag_result"]
    _RESULTS[(design, prop)] = result
    if props.get("pgfrag_explanation"):
        _EXPLANATIONS[(design, prop)] = str(props["pgfrag_explanation"])
    if props.get("pgfrag_survey"):
        _SURVEY_LINES[design] = str(props["pgfrag_survey"])
    if props.get("pgfrag_bug"):
        message, diagram = props["pgfrag_bug"]
        _BUGS[(design, prop)] = (str(message), str(diagram))
    if props.get("pgfrag_replay_file"):
        _REPLAY_FILES[(design, prop)] = str(props["pgfrag_replay_file"])


_RESULTS: dict[tuple[str, str], str] = {}
_SURVEY_LINES: dict[str, str] = {}
_EXPLANATIONS: dict[tuple[str, str], str] = {}
_REPLAY_FILES: dict[tuple[str, str], str] = {}
_REPLAYED: list[str] = []
_BUGS: dict[tuple[str, str], tuple[str, str]] = {}  # (design, property) -> message, diagram

SHORT = {
    "double-alloc": "dbl-alloc",
    "double-free": "dbl-free",
    "use-after-free": "uaf",
    "list-corruption": "list",
    "rcu-head-reuse": "rcu-head",
    "bad-bits": "bad-bits",
    "deadlock": "deadlock",
    "lockdep": "lockdep",
    "early-reuse": "early-reuse",
    "leak": "leak",
}


LEGEND = [
    "FOUND: known bug found  NEW BUG: found, not in `known`  MISSED: known, not found",
    "held: random search found nothing  ERROR: crashed  n/a: does not apply  -: not run",
]
EXHAUSTIVE_LEGEND = "proved ≤B: no violation in any interleaving of any scenario within bound B"
FIRST_PASS_LEGEND = (
    "  (the random run's exhaustive first pass; beyond B, the random survey found nothing)"
)


def render_table(
    results: dict[tuple[str, str], str],
    designs: list[str],
    bound: object = None,
    first_pass: bool = False,
) -> str:
    props = list(PROPERTIES)
    width = max(len(d) for d in designs) + 1
    cols = [max(len(SHORT[p]), 7, *(len(results.get((d, p), "")) for d in designs)) for p in props]
    lines = [
        "design".ljust(width)
        + " ".join(SHORT[p].ljust(c) for p, c in zip(props, cols, strict=True))
    ]
    for design in designs:
        cells = [results.get((design, p), "-").ljust(c) for p, c in zip(props, cols, strict=True)]
        lines.append(design.ljust(width) + " ".join(cells))
    lines.extend(_legend(results, bound, first_pass))
    return "\n".join(line.rstrip() for line in lines)


def _legend(
    results: dict[tuple[str, str], str], bound: object, first_pass: bool = False
) -> list[str]:
    if PROVED not in results.values():
        return LEGEND
    shown = [*LEGEND, EXHAUSTIVE_LEGEND]
    if first_pass:
        shown.append(FIRST_PASS_LEGEND)
    return [*shown, f"B = {bound}"]


def _table_bound(config: pytest.Config) -> tuple[Any, bool]:
    """The bound the table's "proved" cells rest on, and whether it was a first pass."""
    bound = config.pgfrag_bound  # type: ignore[attr-defined]
    if bound is not None:
        return bound, False
    first = config.pgfrag_first_bound  # type: ignore[attr-defined]
    return first, first is not None


def _report_data(
    config: pytest.Config,
    designs: list[str],
    rows: dict[str, Any],
    broken: dict[str, str],
    waste: list[Any],
) -> ReportData:
    args = " ".join(config.invocation_params.args)
    run = (
        f"pytest {args} (profile {settings.get_current_profile_name()}; "
        f"pgfrag {version('pgfrag')}, hypothesis {version('hypothesis')})"
    )
    return ReportData(
        title="pgfrag: s390 2K page-table fragments, designs x properties",
        run=run,
        designs=designs,
        properties=list(PROPERTIES),
        short=SHORT,
        results=dict(_RESULTS),
        legend=_legend(_RESULTS, *_table_bound(config)),
        surveys={d: line for d, line in _SURVEY_LINES.items() if d in designs},
        measures=rows,
        measures_broken=broken,
        contention=render_contention(rows) if rows else "",
        bugs=[
            FoundBug(design, prop, message, diagram, _REPLAY_FILES.get((design, prop)))
            for (design, prop), (message, diagram) in sorted(_BUGS.items())
        ],
        waste=waste,
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A sharded --exhaustive run: the table's cells from the shards' reports
    (stateful/exhaustive/pytest_shards.py); the run fails as the verdict tests
    would have."""
    config = session.config
    want_props = config.getoption("property") or list(PROPERTIES)
    cells = pytest_shards.finish(config, want_props)
    for c in cells:
        _RESULTS[(c.design, c.prop)] = c.cell
        _SURVEY_LINES[c.design] = c.survey
        if c.explanation:
            _EXPLANATIONS[(c.design, c.prop)] = c.explanation
        if c.failure is not None:
            _BUGS[(c.design, c.prop)] = (c.failure.message, c.failure.diagram)
            machine = config.pgfrag_bound.machine_config()  # type: ignore[attr-defined]
            saved = save_replay(
                ReplayFile.of(c.failure, machine), Path(config.getoption("replay_dir"))
            )
            _REPLAY_FILES[(c.design, c.prop)] = shown_path(saved, config.rootpath)
    if any(c.failed for c in cells) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    if hasattr(config, "workerinput"):
        return  # a pytest-xdist worker: the controller prints the table
    if _REPLAYED:
        terminalreporter.section("pgfrag: replays")
        for summary in sorted(_REPLAYED):
            for line in summary.splitlines():  # wrapped to fit a mail
                wrapped = textwrap.wrap(
                    line, DIAGRAM_WIDTH, subsequent_indent="    ", break_on_hyphens=False
                )
                for part in wrapped:
                    terminalreporter.write_line(part)
    mutants.summary(terminalreporter)
    if not _RESULTS:
        return
    designs = [d for d in config.pgfrag_designs if any(k[0] == d for k in _RESULTS)]  # type: ignore[attr-defined]
    tr = terminalreporter
    tr.section("pgfrag: designs x properties")
    bound, first_pass = _table_bound(config)
    tr.write_line(render_table(_RESULTS, designs, bound, first_pass))
    if bound is not None:
        for line in bound.explained():
            tr.write_line(line)
    for design in designs:
        if design in _SURVEY_LINES:
            tr.write_line(f"  {design}: {_SURVEY_LINES[design]}")
    # The costs, on the same seeded workloads for every design: a second or two.
    rows, broken = {}, {}
    for d in designs:
        try:
            rows[d] = measure(config.pgfrag_designs[d])  # type: ignore[attr-defined]
        except Exception as exc:  # a plugin's hook that crashes must not hide the verdicts
            broken[d] = f"not measured: {type(exc).__name__}: {exc}"
    tr.section("pgfrag: costs (memory, reuse-delay, contention)")
    if rows:
        tr.write_line(render_measures(rows))
    for d, why in broken.items():
        tr.write_line(f"  {d}: {why}")
    # The memory-waste workloads of the designs they compare that ran: a second or two.
    compared = {d: config.pgfrag_designs[d] for d in WASTE_DESIGNS if d in rows}  # type: ignore[attr-defined]
    waste = measure_wastes(compared) if compared else []
    if waste:
        tr.section("pgfrag: memory waste (python benchmarks/measures.py --workload NAME)")
        tr.write_line(render_waste(waste))
    report = config.getoption("report")
    if report:
        data = _report_data(config, designs, rows, broken, waste)
        html, markdown = write_report(Path(report), data)
        tr.write_line(f"pgfrag: report written to {html} and {markdown}")
    for (design, prop), text in sorted(_EXPLANATIONS.items()):
        tr.section(f"pgfrag: {design} / {prop}", sep="-")
        tr.write_line(text)
        if (design, prop) in _REPLAY_FILES:
            tr.write_line(f"\nsaved: pytest --replay {_REPLAY_FILES[(design, prop)]}")
