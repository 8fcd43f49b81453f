"""How fast the bounded exhaustive search finds each known bug, proves the rest, and prunes.

    python benchmarks/exhaustive_speed.py                   # every known bug, at the default bound
    python benchmarks/exhaustive_speed.py --bound S=3,C=1,P=1 --design pre-c2c-5.16
    python benchmarks/exhaustive_speed.py --table --jobs 2  # every design, whole bound
    python benchmarks/exhaustive_speed.py --pruning          # what each pruning saves
    python benchmarks/exhaustive_speed.py --where-time --design upstream-6.4 --bound S=2
    python benchmarks/exhaustive_speed.py --table --jobs 2 \
        --write-shortest tests/golden/shortest.json         # the minimizer tests' truth

Known bugs (the default): one search per (design, property), on one core,
stopping once that property's shortest counterexample is certain. For each:
the seconds until it was first seen, the seconds until it was certain to be
the shortest (every shorter scenario and interleaving explored), the rule
calls run by then, and the counterexample's cost: operations in the setup
(S) and after it (C), preemptions (P), interrupts (I), rule calls, and
whether it ends in the teardown drain. pre-c2c-5.16's use-after-free is
measured whether or not the design lists it yet: it is the positive control.

--write-shortest PATH: also write the shortest counterexample of each bug
found (its length in rule calls, and its cost) as JSON; tests/test_minimizer.py
holds the minimizer's replay files to tests/golden/shortest.json, which the
--table run writes.

--table: every design at the bound, each searched to its end (one job per
design, --jobs at once, each in a fresh process), with its time, counts,
rate and peak resident memory (the process's, interpreter included), and
the wall time of the whole table. pytest does the same with `pytest --exhaustive -n N`.
With --shard-depth K, each design's search is split into shards at its
first K setup operations (stateful/exhaustive/shard.py), the shards of
every design are the jobs, and each design's line merges its shards: the
rule calls run and the states are summed (a state two shards reach counts
twice), its time is the sum of its shards' search times, and it names its
largest shard. Interleavings are not shown: a shard counts them from its
own setup, not from boot.

--pruning: on a small bound, each pruning switched off in turn, the rule
calls run with and without it (the factor it saves), and whether the states
and violations reached are the same (tests/test_exhaustive.py pins that);
for hugh-v1 and pre-c2c-5.16, or each --design. For the CPU symmetry the
states compared are read with the CPUs numbered canonically.

--where-time: one search per --design, its time split between replaying
a node's path from boot, the rule call tried, the fingerprint, the drain
and the search's own bookkeeping; and, for every quiescent node replayed
(nothing in flight, so the world could be copied instead), what a
copy.deepcopy of the replayed machine costs against the replay: the price
of a cache of quiescent worlds to restart from.

--without NAME (repeatable): the searches of --table (unsharded) and of the
known bugs run with that pruning or shortcut of stateful.exhaustive.Pruning
switched off, for a same-day comparison of what it saves in time and memory.

--operation NAME (repeatable): with --table (unsharded), search only these
operation rules of the machine (the scheduling rules always): what is proved
is proved for them only. A positive control for one path, where another
path to the same bug would be met first (pre-c2c-5.16's race through the
loser of pmd_install, without MADV_DONTNEED's page_table_free).

--progress SECONDS: with --table (unsharded), each design's search prints a
line on stderr every SECONDS (the cost order it has reached, the rule calls
run, the states, its peak resident memory so far): a run past the default
bound takes hours.

Interleavings per second are rule-call sequences run per second.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from designs.registry import load_designs
from stateful import workers
from stateful.exhaustive import DEFAULT_BOUND, Counterexample, Pruning, explore, parse_bound
from stateful.exhaustive import trial as exhaustive_trial
from stateful.exhaustive.search import Explorer
from stateful.exhaustive.shard import Shard, counts, merge, shards
from stateful.exhaustive.shard import search as search_shard
from stateful.fingerprint import StateError, fingerprint
from stateful.machine import KernelMachine
from stateful.rules import rules_of

POSITIVE_CONTROL = ("pre-c2c-5.16", "use-after-free")
PRUNING_BOUND = "S=1,C=1,P=1,I=1,tables=1,boot=1,mms=1,exits=0,pgste=0,batch=0"
# Two operations in flight: where the CPUs can hold different things at once.
SYMMETRY_BOUND = "S=1,C=2,P=1,I=1,tables=1,boot=1,mms=1,exits=0,pgste=0,batch=0"
PICKS_BOUND = "S=2,C=0,P=0,I=1,tables=2,boot=1,mms=2,exits=1,pgste=1,batch=1"


def known_bugs(only: list[str]) -> list[tuple[str, str]]:
    designs = load_designs()
    bugs = sorted(
        (name, prop)
        for name, cls in designs.items()
        if cls.__module__.startswith("designs.")
        for prop in cls.known
    )
    if POSITIVE_CONTROL[0] in designs and POSITIVE_CONTROL not in bugs:
        bugs.append(POSITIVE_CONTROL)
    return [b for b in bugs if not only or b[0] in only]


def pruning_without(names: Iterable[str]) -> Pruning:
    return attrs.evolve(Pruning(), **dict.fromkeys(names, False))


def find(
    design: str, prop: str, bound: str, without: tuple[str, ...] = ()
) -> tuple[str, dict[str, object] | None]:
    start = time.perf_counter()
    explorer = explore(
        load_designs()[design],
        parse_bound(bound),
        pruning_without(without),
        stop_after=frozenset({prop}),
    )
    certain = time.perf_counter() - start
    r = explorer.result
    found = r.found.get(prop)
    if found is None:
        return (
            f"{design:<14} {prop:<16} NOT FOUND within the bound: {certain:8.1f} s, "
            f"{r.executed:,} run ({r.rate:,.0f}/s)"
        ), None
    c = found.cost
    drain = "+drain" if found.in_drain else ""
    shortest = _shortest(found, bound)
    return (
        f"{design:<14} {prop:<16} {found.seconds:8.1f} {certain:8.1f} {r.executed:>9,} "
        f"{r.rate:6,.0f}  S={c.setup} C={c.concurrent} P={c.preemptions} I={c.interrupts} "
        f"{c.calls} calls{drain}"
    ), shortest


def whole(
    design: str,
    bound: str,
    without: tuple[str, ...] = (),
    every: float = 0.0,
    operations: frozenset[str] | None = None,
) -> tuple[str, float, dict[str, object]]:
    start = time.perf_counter()
    r = explore(
        load_designs()[design],
        parse_bound(bound),
        pruning_without(without),
        progress=_progress if every else None,
        progress_every=every,
        operations=operations,
    ).result
    seconds = time.perf_counter() - start
    found = ", ".join(sorted(r.found)) or "nothing"
    shortest = {f"{design}--{prop}": _shortest(c, bound) for prop, c in r.found.items()}
    line = f"{design:<22} {seconds:8.1f} s  {r.counts()}; found: {found}; peak {_peak_mb():,} MB"
    return line, seconds, shortest


def _progress(line: str) -> None:
    print(f"{line}; peak {_peak_mb():,} MB", file=sys.stderr, flush=True)


def _peak_mb() -> int:
    """This process's peak resident memory (Linux reports it in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _shard(design: str, shard: Shard) -> Any:
    return search_shard(load_designs()[design], shard)


def sharded(
    designs: list[str], bound: str, depth: int, jobs: int
) -> list[tuple[str, float, dict[str, object]]]:
    """Each design's search split into shards; every shard of every design a job."""
    b = parse_bound(bound)
    plans = {d: shards(load_designs()[d], b, depth) for d in designs}
    work = [(d, s) for d, (parts, _) in plans.items() for s in parts]
    with workers.pool(jobs) as pool:
        results = list(pool.map(_shard, *zip(*work, strict=True)))
    rows = []
    for design, (parts, prefix) in plans.items():
        mine = [r for (d, _), r in zip(work, results, strict=True) if d == design]
        r = merge(design, b, [prefix, *mine])
        found = ", ".join(sorted(r.found)) or "nothing"
        largest = max(m.executed for m in mine)
        line = (
            f"{design:<22} {r.seconds:8.1f} s  {counts(r, len(parts), largest)}; "
            f"{'complete' if r.complete else 'INCOMPLETE'}; found: {found}"
        )
        rows.append(
            (line, r.seconds, {f"{design}--{p}": _shortest(c, bound) for p, c in r.found.items()})
        )
    return rows


def _shortest(found: Counterexample, bound: str) -> dict[str, object]:
    return {
        "calls": found.cost.calls,
        "cost": str(found.cost),
        "in_drain": found.in_drain,
        "bound": bound,
    }


def pruning(designs: list[str]) -> None:
    cases = [
        ("CPU symmetry", SYMMETRY_BOUND, Pruning(symmetry=False)),
        ("state cache", PRUNING_BOUND, Pruning(cache=False)),
        ("pause narrowing", PRUNING_BOUND, Pruning(pauses=False)),
        ("interrupt narrowing", PRUNING_BOUND, Pruning(interrupts=False)),
        ("pick narrowing", PICKS_BOUND, Pruning(picks=False)),
    ]
    print(f"{'pruning':<20} {'design':<14} {'run with':>9} {'without':>10} {'factor':>7}  same?")
    for design in designs or ("hugh-v1", "pre-c2c-5.16"):
        cls = load_designs()[design]
        for name, bound, off in cases:
            on = explore(cls, parse_bound(bound))
            plain = explore(cls, parse_bound(bound), off)
            same = plain.canonical_states() == on.states and plain.violations == on.violations
            factor = plain.result.executed / on.result.executed
            print(
                f"{name:<20} {design:<14} {on.result.executed:>9,} {plain.result.executed:>10,} "
                f"{factor:>6.1f}x  {'yes' if same else 'NO'}"
            )
    print(
        f"(bounds: {PRUNING_BOUND}; CPU symmetry: {SYMMETRY_BOUND}; pick narrowing: {PICKS_BOUND})"
    )


MEASURING = "measuring the copies"


class _Clock:
    """Time split between nested parts, each charged only its own share: a
    fingerprint read inside a rule call counts as fingerprint, not twice."""

    def __init__(self) -> None:
        self.spent: Counter[str] = Counter()
        self.runs: Counter[str] = Counter()
        self._stack: list[str] = []
        self._mark = time.perf_counter()

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        self._switch()
        self._stack.append(name)
        self.runs[name] += 1
        try:
            yield
        finally:
            self._switch()
            self._stack.pop()

    def _switch(self) -> None:
        now = time.perf_counter()
        if self._stack:
            self.spent[self._stack[-1]] += now - self._mark
        self._mark = now


class _Timed(Explorer):
    """The search, with a clock on each part of a rule call's cost."""

    clock: _Clock
    copies: list[tuple[float, float]]  # (replay s, deepcopy s) of quiescent nodes
    faithful: int  # copies with the fingerprint of the machine copied

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.clock, self.copies, self.faithful = _Clock(), [], 0

    def _replay(self, path: tuple[Any, ...]) -> Any:
        start = time.perf_counter()
        with self.clock.part(REPLAY):
            machine = super()._replay(path)
        took = time.perf_counter() - start
        if path and all(cpu.idle for cpu in machine.world.cpus) and len(self.copies) < 2000:
            with self.clock.part(MEASURING):
                start = time.perf_counter()
                copied = copy.deepcopy(machine)
                self.copies.append((took, time.perf_counter() - start))
                self.faithful += _same_state(copied, machine)
        return machine

    def _drain_once(self, machine: Any, digest: bytes, path: Any, cost: Any) -> None:
        with self.clock.part(DRAIN):
            super()._drain_once(machine, digest, path, cost)


REPLAY, CALL, FINGERPRINT, DRAIN = (
    "replay from boot",
    "rule call run",
    "fingerprint",
    "drain (teardown)",
)


def _same_state(copied: Any, machine: Any) -> bool:
    skip = exhaustive_trial.NOT_STATE
    try:
        return fingerprint(copied, skip) == fingerprint(machine, skip)
    except StateError:
        return False  # the copy keeps the original's id() keys: not a state at all


def where_time(design: str, bound: str) -> None:
    explorer = _Timed(load_designs()[design], parse_bound(bound))
    clock = explorer.clock
    real = exhaustive_trial.call, exhaustive_trial.canonical, exhaustive_trial.fingerprint
    real_call, real_canonical, real_fingerprint = real

    def call(*args: Any, **kwargs: Any) -> Any:
        with clock.part(CALL):
            return real_call(*args, **kwargs)

    # Every fingerprint the search reads goes through one of these two: the
    # state of an outcome, and the state an interrupt fires in.
    def canonical(machine: Any, skip: Any) -> Any:
        with clock.part(FINGERPRINT):
            return real_canonical(machine, skip)

    def timed_fingerprint(machine: Any, skip: Any) -> bytes:
        with clock.part(FINGERPRINT):
            return real_fingerprint(machine, skip)

    timed = call, canonical, timed_fingerprint
    exhaustive_trial.call, exhaustive_trial.canonical, exhaustive_trial.fingerprint = timed
    try:
        with clock.part("the search's own bookkeeping"):
            explorer.run()
    finally:
        exhaustive_trial.call, exhaustive_trial.canonical, exhaustive_trial.fingerprint = real
    r = explorer.result
    spent = dict(clock.spent)
    spent.pop(MEASURING, None)
    total = sum(spent.values())
    calls = clock.runs[CALL]
    print(
        f"{design} at {parse_bound(bound)}: {total:.1f} s, {r.executed:,} rule calls: "
        f"{calls:,} run, {r.read:,} read on the way through a longer one, {r.reused:,} "
        "taken from an earlier call whose interrupt fired in the same state; "
        f"{clock.runs[REPLAY]:,} replays from boot, {clock.runs[FINGERPRINT]:,} fingerprints"
    )
    for part in (REPLAY, CALL, FINGERPRINT, DRAIN, "the search's own bookkeeping"):
        seconds = spent.get(part, 0.0)
        print(f"  {part:<30} {seconds:7.1f} s  {100 * seconds / total:3.0f}%")
    if explorer.copies:
        replays = sum(a for a, _ in explorer.copies) / len(explorer.copies)
        copies = sum(b for _, b in explorer.copies) / len(explorer.copies)
        print(
            f"  quiescent nodes replayed: {len(explorer.copies):,} sampled; replay from boot "
            f"{1e3 * replays:.2f} ms, copy.deepcopy of the replayed machine {1e3 * copies:.2f} ms "
            f"({copies / replays:.1f}x the replay); the copy is the same state in "
            f"{explorer.faithful:,} of {len(explorer.copies):,}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bound", default=str(DEFAULT_BOUND).replace(" ", ","))
    parser.add_argument("--design", action="append", default=[])
    parser.add_argument("--table", action="store_true", help="every design, whole bound")
    parser.add_argument("--jobs", type=int, default=1, help="searches run at once")
    parser.add_argument(
        "--write-shortest", metavar="PATH", help="write each known bug's shortest length (JSON)"
    )
    parser.add_argument(
        "--shard-depth",
        type=int,
        default=0,
        metavar="K",
        help="with --table: split each design's search at its first K setup operations",
    )
    parser.add_argument("--pruning", action="store_true", help="what each pruning saves")
    parser.add_argument(
        "--where-time", action="store_true", help="where a search's time goes, per --design"
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=[f.name for f in attrs.fields(Pruning) if f.type in (bool, "bool")],
        metavar="NAME",
        help="search with this pruning or shortcut off (a field of Pruning)",
    )
    parser.add_argument(
        "--progress",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --table (unsharded): a progress line per design on stderr every SECONDS",
    )
    operation_rules = sorted(r.name for r in rules_of(KernelMachine) if r.operation)
    parser.add_argument(
        "--operation",
        action="append",
        default=[],
        choices=operation_rules,
        metavar="NAME",
        help="with --table (unsharded): search only these operations",
    )
    args = parser.parse_args(argv)
    if args.operation and (not args.table or args.shard_depth):
        parser.error("--operation applies to --table (unsharded)")
    if args.progress and (not args.table or args.shard_depth):
        parser.error("--progress applies to --table (unsharded)")
    if args.without and (args.pruning or args.where_time or args.shard_depth):
        parser.error("--without applies to --table (unsharded) and to the known bugs")
    without = tuple(args.without)
    bound = str(parse_bound(args.bound)).replace(" ", ",")
    if args.pruning:
        pruning(args.design)
        return 0
    if args.where_time:
        for design in args.design or ["upstream-6.4"]:
            where_time(design, bound)
        return 0
    operations = frozenset(args.operation) or None
    print(
        f"bound: {parse_bound(bound)}"
        + (f"; without {', '.join(without)}" if without else "")
        + (f"; operations {', '.join(sorted(operations))} only" if operations else "")
    )
    if args.table:
        designs = args.design or list(load_designs())
        start = time.perf_counter()
        if args.shard_depth:
            rows = sharded(designs, bound, args.shard_depth, args.jobs)
        else:
            # A fresh process per design, so that its peak memory is its own.
            with workers.pool(args.jobs, max_tasks_per_child=1) as pool:
                n = len(designs)
                rows = list(
                    pool.map(
                        whole,
                        designs,
                        [bound] * n,
                        [without] * n,
                        [args.progress] * n,
                        [operations] * n,
                    )
                )
        shortest: dict[str, object] = {}
        for line, _, found in rows:
            print(line, flush=True)
            shortest |= found
        _write(args.write_shortest, shortest)
        wall = time.perf_counter() - start
        print(
            f"whole table: {wall:.1f} s wall on {args.jobs} job(s), "
            f"{sum(s for _, s, _ in rows):.1f} s of search"
        )
        return 0
    print(
        f"{'design':<14} {'property':<16} {'seen s':>8} {'sure s':>8} {'run':>9} {'/s':>6}  "
        "shortest counterexample"
    )
    bugs = known_bugs(args.design)
    shortest: dict[str, object] = {}
    with workers.pool(args.jobs) as pool:
        for (design, prop), (line, found) in zip(
            bugs,
            pool.map(find, *zip(*bugs, strict=True), [bound] * len(bugs), [without] * len(bugs)),
            strict=True,
        ):
            print(line, flush=True)
            if found is not None:
                shortest[f"{design}--{prop}"] = found
    _write(args.write_shortest, shortest)
    return 0


def _write(path: str | None, shortest: dict[str, object]) -> None:
    if path:
        Path(path).write_text(json.dumps(shortest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.exit(main())
