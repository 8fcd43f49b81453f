"""The pytest wiring of `--exhaustive --shard-depth K`: one design's search over many workers.

Without it a design's search is one pytest-xdist group: one worker, however
many there are. With it, each design's search is split into shards
(stateful/exhaustive/shard.py) and every shard is a test of its own,
`test_exhaustive_shard`, which pytest-xdist spreads over its workers and
hosts like any other. A shard's test passes once its search is complete,
and sends what it found to the controller in its report. The controller
merges each design's shards (their setups are searched again there, the
few rule calls that takes), replays each property's shortest counterexample
for its race diagram and replay file, and fills the designs x properties
table as the verdict tests would: FOUND, NEW BUG, MISSED or proved ≤B. The
run fails when a cell is NEW BUG or MISSED, or a shard's report is missing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from attrs import define

from designs.base import Design
from stateful.exhaustive.bound import Bound
from stateful.exhaustive.result import PROVED, Cost, Counterexample, Result
from stateful.exhaustive.shard import Shard, counts, merge, shards
from stateful.exhaustive.verdict import replayed
from stateful.hunt import explain
from stateful.replay import Step

_REPORTS: dict[str, dict[int, dict[str, Any]]] = {}  # design -> shard number -> its record


def addoption(group: Any) -> None:
    group.addoption(
        "--shard-depth",
        type=int,
        default=0,
        metavar="K",
        help="with --exhaustive: split each design's search into shards at its first K "
        "setup operations, each a test pytest-xdist can run anywhere (-n, --tx)",
    )


def depth(config: pytest.Config) -> int:
    k = int(config.getoption("shard_depth"))
    if k < 0:
        raise pytest.UsageError(f"--shard-depth {k}: give a number of setup operations, 0 or more")
    if k and not config.getoption("exhaustive"):
        raise pytest.UsageError("--shard-depth splits the --exhaustive search; give both")
    return k


def sharding(config: pytest.Config) -> bool:
    return bool(config.getoption("exhaustive") and depth(config))


def plan(config: pytest.Config, design: str) -> tuple[list[Shard], Result]:
    """A design's shards, worked out once per process (the same on every worker)."""
    plans = config.__dict__.setdefault("pgfrag_shard_plans", {})
    if design not in plans:
        cls = config.pgfrag_designs[design]  # type: ignore[attr-defined]
        plans[design] = shards(cls, config.pgfrag_bound, depth(config))  # type: ignore[attr-defined]
    return plans[design]


def generate(metafunc: pytest.Metafunc, designs: list[str]) -> None:
    if "shard_case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    params = []
    if sharding(config):
        for design in designs:
            parts, _ = plan(config, design)
            params += [
                pytest.param((design, n), id=f"{design}:shard-{n + 1}-of-{len(parts)}")
                for n in range(len(parts))
            ]
    metafunc.parametrize("shard_case", params)


def select(config: pytest.Config, items: list[pytest.Item], drop: list[pytest.Item]) -> list[Any]:
    """Sharded, the shards run instead of the verdict tests; else no shard runs."""
    sharded = sharding(config)
    keep = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        is_shard = "shard_case" in params or getattr(item, "originalname", "") == (
            "test_exhaustive_shard"
        )
        if is_shard:
            (keep if sharded and "shard_case" in params else drop).append(item)
        elif sharded and "verdict_case" in params:
            drop.append(item)
        else:
            keep.append(item)
    return keep


# --- a shard's record, from the worker to the controller ----------------------


def to_record(design: str, number: int, result: Result) -> str:
    found = {
        prop: {
            "steps": [[s.rule, [list(a) for a in s.args]] for s in c.steps],
            "cost": [c.cost.setup, c.cost.concurrent, c.cost.preemptions, c.cost.interrupts],
            "calls": c.cost.calls,
            "message": c.message,
            "in_drain": c.in_drain,
            "seconds": c.seconds,
            "interleavings": c.interleavings,
        }
        for prop, c in result.found.items()
    }
    return json.dumps(
        {
            "design": design,
            "shard": number,
            "executed": result.executed,
            "read": result.read,
            "reused": result.reused,
            "states": result.states,
            "scenarios": result.scenarios,
            "seconds": result.seconds,
            "complete": result.complete,
            "found": found,
        }
    )


def from_record(record: dict[str, Any], bound: Bound) -> Result:
    result = Result(
        record["design"],
        bound,
        scenarios=record["scenarios"],
        executed=record["executed"],
        read=record["read"],
        reused=record["reused"],
        states=record["states"],
        seconds=record["seconds"],
        complete=record["complete"],
    )
    for prop, c in record["found"].items():
        steps = tuple(Step(rule, tuple((k, v) for k, v in args)) for rule, args in c["steps"])
        cost = Cost(*c["cost"], calls=c["calls"])
        result.found[prop] = Counterexample(
            prop, steps, cost, c["message"], c["in_drain"], c["seconds"], c["interleavings"]
        )
    return result


def logreport(report: pytest.TestReport, props: dict[str, Any]) -> None:
    if "pgfrag_shard" in props and report.when == "call":
        record = json.loads(str(props["pgfrag_shard"]))
        _REPORTS.setdefault(record["design"], {})[record["shard"]] = record


# --- the controller's merge ---------------------------------------------------


def finish(config: pytest.Config, want_props: list[str]) -> list[ShardedCell]:
    """Each sharded design's cells, from its shards' records; none when not sharding."""
    if not sharding(config) or hasattr(config, "workerinput"):
        return []
    bound: Bound = config.pgfrag_bound  # type: ignore[attr-defined]
    out = []
    for design, records in sorted(_REPORTS.items()):
        cls = config.pgfrag_designs[design]  # type: ignore[attr-defined]
        parts, prefix = plan(config, design)
        missing = [n + 1 for n in range(len(parts)) if n not in records]
        merged = merge(design, bound, [prefix, *(from_record(r, bound) for r in records.values())])
        largest = max((r["executed"] for r in records.values()), default=0)
        line = f"exhaustive ≤B in {counts(merged, len(parts), largest)}"
        if missing:
            line += f"; NO REPORT from shards {missing}: nothing is proved"
        out.extend(_cells(cls, merged, want_props, line, complete=not missing))
    return out


@define
class ShardedCell:
    """One cell of the table from a sharded search, with what the summary shows of it."""

    design: str
    prop: str
    cell: str
    survey: str  # the design's line under the table
    explanation: str = ""
    failure: Any = None  # the counterexample replayed, traced: its diagram and replay file

    @property
    def failed(self) -> bool:
        return self.cell in ("NEW BUG", "MISSED", "ERROR", "-")


def _cells(
    cls: type[Design], merged: Result, want_props: list[str], survey: str, complete: bool
) -> list[ShardedCell]:
    out = []
    for prop in want_props:
        if prop == "early-reuse" and not cls.supports_defer:
            out.append(ShardedCell(cls.name, prop, "n/a", survey))
            continue
        known = prop in cls.known
        found = merged.found.get(prop)
        if found is None:
            cell = ("MISSED" if known else PROVED) if complete and merged.complete else "-"
            out.append(ShardedCell(cls.name, prop, cell, survey))
            continue
        cell = ShardedCell(cls.name, prop, "FOUND" if known else "NEW BUG", survey)
        again = replayed(cls, found, merged.bound)
        if again is None:
            cell.cell = "ERROR"  # seen by a shard, not reproduced: the model is not deterministic
            cell.explanation = f"{found.message}: a shard saw it; its replay does not end in it"
        else:
            cell.failure = again[1]
            cell.explanation = f"shortest within B: {found.describe()}\n{explain(cell.failure)}"
        out.append(cell)
    return out
