"""One mutant judged by the exhaustive mode, against its design's baseline.

killed      the mutant reaches, within the bound, a violation the design
            does not reach: a property the design does not reach
            (stateful/mutants/baseline.py), or one it does reach, broken
            in a scenario the design passes in every interleaving
            (stateful/mutants/scenario.py): the design's own known bugs
            do not count, its own scenarios of them neither. The search
            stops once the first kill is reached and nothing shorter is
            left to explore (shortest-first order), so its counterexample
            is minimal; it is replayed, traced, for its race diagram, and
            saved as a replay file that names the mutant.
equivalent  proved within the bound: either none of the changed lines ran
            in the design's own search (so the mutant's search is the
            design's, rule call for rule call), or the mutant's complete
            search reached exactly the design's end states (quiescent
            state fingerprints) and properties.
survived    no violation the design does not reach within the bound, and
            not proved equivalent: the line does not matter there, or the
            suite cannot see what it protects.
invalid     the mutant does not run: the model raised an exception that
            is no property (a hook that no longer returns a table, a
            name used before it is set). It never stops the run.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

from attrs import asdict, define, field

from designs.base import Design
from stateful.exhaustive.bound import Bound
from stateful.exhaustive.verdict import replayed
from stateful.mutants.baseline import ROOT, Baseline
from stateful.mutants.build import counted_class, mutant_class
from stateful.mutants.derive import Mutant
from stateful.mutants.explore import Borrowing
from stateful.mutants.scenario import DesignPasses
from stateful.mutants.source import methods
from stateful.replay_file import ReplayFile, save_replay, shown_path

KILLED = "killed"
SURVIVED = "survived"
EQUIVALENT = "equivalent"
INVALID = "invalid"


@define
class Verdict:
    id: str
    kind: str
    method: str
    line: int
    operator: str
    where: str  # file:line
    original: str
    shown: str
    property: str = ""  # killed: the property
    detail: str = ""  # killed: the violation; invalid: the exception; else why
    diagram: str = ""
    steps: list[str] = field(factory=list)
    replay: str = ""  # the replay file of a killed mutant
    cost: str = ""
    counts: str = ""
    seconds: float = 0.0
    note: str = ""  # the design's own line of why, for a survivor
    taken: int = 0  # states whose future was taken from the design's search
    # killed: by a property the design reaches, in a scenario the design passes
    design_passes: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _verdict(mutant: Mutant, kind: str, **more: object) -> Verdict:
    return Verdict(
        id=mutant.id,
        kind=kind,
        method=mutant.method,
        line=mutant.line,
        operator=mutant.operator,
        where=mutant.where,
        original=mutant.original,
        shown=mutant.shown,
        **more,  # type: ignore[arg-type]
    )


def judge(
    design_cls: type[Design],
    mutant: Mutant,
    bound: Bound,
    base: Baseline,
    replay_dir: Path | None,
    source: str,
    reuse: bool = True,
    **focus: Any,
) -> Verdict:
    """`focus`: the Explorer's `setup` and `operations`, as the baseline was searched with.
    `reuse`: take from the design's search what the change cannot touch (explore.Borrowing)."""
    start = time.perf_counter()
    note = getattr(design_cls, "mutant_notes", {}).get(mutant.id, "")
    if not base.ran_any(mutant.path, mutant.lines):
        return _verdict(
            mutant,
            EQUIVALENT,
            detail="never runs within the bound: its lines never ran in the design's own search",
            note=note,
            seconds=time.perf_counter() - start,
        )
    try:
        counted, _, _ = counted_class(design_cls, mutant)
        explorer = Borrowing(counted, bound, **focus)
        explorer.expected = base.properties
        passes = DesignPasses(design_cls, bound) if base.properties else None
        explorer.passes = passes
        explorer.borrow_from(base.graph if reuse else {}, base.changed(mutant.path, mutant.lines))
        if reuse:
            method = changed_method(design_cls, mutant, base)
            explorer.take_calls(base.calls, base.options, base.drains, method)
        result = explorer.run()
    except Exception as exc:  # the mutant crashed the model: invalid, and the run goes on
        return _verdict(
            mutant,
            INVALID,
            detail=_crash(exc, mutant),
            seconds=time.perf_counter() - start,
        )
    counts = (
        f"{result.scenarios:,} scenarios, {result.interleavings:,} interleavings, "
        f"{result.executed:,} rule-call sequences run, {explorer.borrowed:,} states "
        f"and {explorer.calls_taken:,} rule calls taken from the design's search"
    )
    taken = explorer.borrowed
    kills = explorer.kills()
    if passes is not None:
        counts += (
            f"; the design's scenarios checked: {passes.replays:,} replays, "
            f"{passes.searches:,} searches ({passes.executed:,} rule-call sequences run)"
        )
    if kills:
        prop, found, in_passed = kills[0]
        cls = mutant_class(design_cls, mutant)
        again = replayed(cls, found, bound)
        diagram, saved = "", ""
        detail = found.message
        if again is None:
            detail += " (its rule calls do not reproduce it on replay)"
        else:
            violation, failure = again
            diagram = failure.diagram
            detail = str(violation).splitlines()[0]
            if replay_dir is not None:
                replay = ReplayFile.of(failure, bound.machine_config())
                replay = ReplayFile(
                    design=replay.design,
                    property=replay.property,
                    steps=replay.steps,
                    expected=replay.expected,
                    machine=replay.machine,
                    mutant=mutant.id,
                    design_source=source,
                )
                saved = shown_path(save_replay(replay, replay_dir), ROOT)
        if in_passed:
            detail += (
                f" ({design_cls.name} reaches {prop} too, but in no interleaving of this "
                "scenario within the bound)"
            )
        return _verdict(
            mutant,
            KILLED,
            property=prop,
            detail=detail,
            diagram=diagram,
            steps=[str(s) for s in found.steps],
            replay=saved,
            cost=f"{found.cost}{' + teardown drain' if found.in_drain else ''}",
            counts=counts,
            taken=taken,
            design_passes=in_passed,
            seconds=time.perf_counter() - start,
        )
    index = {e: i for i, e in enumerate(base.ends)}
    reached = explorer.borrowed_ends
    for end in explorer.ends:
        reached |= 1 << index[end] if end in index else 0
    extra = sum(1 for end in explorer.ends if end not in index)
    missing = len(base.ends) - reached.bit_count()
    found = frozenset(result.found) | explorer.borrowed_props
    if not extra and not missing and found == base.properties:
        return _verdict(
            mutant,
            EQUIVALENT,
            detail=f"the same {len(base.ends):,} end states and properties as the design",
            counts=counts,
            note=note,
            taken=taken,
            seconds=time.perf_counter() - start,
        )
    why = [f"{extra:,} end states the design does not reach, {missing:,} it reaches missing"]
    lost = sorted(base.properties - found)
    if lost:
        why.append(f"no longer reaches {', '.join(lost)}")
    return _verdict(
        mutant,
        SURVIVED,
        detail="; ".join(why),
        counts=counts,
        note=note,
        taken=taken,
        seconds=time.perf_counter() - start,
    )


def changed_method(design_cls: type[Design], mutant: Mutant, base: Baseline) -> int:
    """The statements (bit mask of the baseline's) of the method the mutant changes."""
    tree = next(m for m in methods(design_cls) if m.name == mutant.method).tree
    return base.method_statements(mutant.path, tree.lineno, tree.end_lineno or tree.lineno)


def _crash(exc: BaseException, mutant: Mutant) -> str:
    """The exception, and where in the design it was raised."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == mutant.path]
    where = f" at {Path(mutant.path).name}:{frames[-1].lineno}" if frames else ""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}{where}"
