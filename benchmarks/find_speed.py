"""How fast the machine finds each known bug, over several seeds.

    python benchmarks/find_speed.py                       # every known bug, 10 fresh seeds
    python benchmarks/find_speed.py --design hugh-hh --seeds 1 2 3 --max-examples 3000
    python benchmarks/find_speed.py --survey --max-examples 2000   # what pytest runs
    python benchmarks/find_speed.py --generator hypothesis  # Hypothesis's own generation

--survey measures what the verdict tests run: one survey per design and
seed (all properties at once, the budget of the default profile), and
reports in how many seeds each known property was found, and any property
found that the design does not list as known.

    python benchmarks/find_speed.py --survey --design hugh-hh --max-exits 0 --max-examples 6000

is the controlled experiment for the c2c224932fd0 question: with no mm
exit, hugh-hh's unstable mm cannot happen, so any use-after-free or
double free left would be another race.

Seeds are drawn fresh for every run (never fixed in the code, so the search
cannot be tuned to them) and printed first; `--seeds` repeats a run exactly.

For each (design, known property) and seed: the examples and seconds until
the first failure (generate phase only, no shrinking), then the length of the
sequence pgfrag's minimizer ends with. A row that says "missed" is a seed the
search did not find the bug in within --max-examples. Uses every core.

`--generator hypothesis` draws each example with Hypothesis's rule-based
generation instead of pgfrag's random scheduler (stateful/scheduler.py):
the comparison that chose the scheduler.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

import hypothesis.core
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from designs.registry import load_designs
from stateful import workers
from stateful.budget import DEFAULT_EXAMPLES, DEFAULT_STEPS
from stateful.machine import FAILURES, KernelMachine, machine_for
from stateful.replay import minimize
from stateful.scheduler import search
from stateful.violations import Violation


def _seed(seed: int) -> None:
    """Seed this job's search. Hypothesis draws a test's seed from its own
    Random, not from `random`; its global force seed (what pytest's
    --hypothesis-seed sets) is what makes a seed repeat a run exactly."""
    random.seed(seed)
    hypothesis.core.global_force_seed = seed


def _settings(max_examples: int, steps: int) -> settings:
    """Generate only, not derandomized: each job's seed (`_seed`) drives it."""
    return settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


def one(design: str, prop: str, seed: int, max_examples: int, steps: int, generator: str) -> tuple:
    cls = load_designs()[design]
    machine = machine_for(cls, prop)
    examples = 0
    original_init = KernelMachine.__init__

    def counting_init(self: KernelMachine) -> None:
        nonlocal examples
        examples += 1
        original_init(self)

    KernelMachine.__init__ = counting_init  # type: ignore[method-assign]
    s = _settings(max_examples, steps)
    _seed(seed)
    start = time.perf_counter()
    try:
        if generator == "hypothesis":
            run_state_machine_as_test(machine, settings=s)
        else:
            search(machine, s)
    except Violation:
        took = time.perf_counter() - start
        found_at = examples  # before the minimizer's replays, which make machines too
        failure = FAILURES[(design, prop)]
        t0 = time.perf_counter()
        minimal = minimize(machine, failure.steps, prop)
        return (
            design,
            prop,
            seed,
            found_at,
            took,
            len(failure.steps),
            len(minimal),
            time.perf_counter() - t0,
        )
    finally:
        KernelMachine.__init__ = original_init  # type: ignore[method-assign]
    return (design, prop, seed, examples, None, None, None, None)


def one_survey(
    design: str, seed: int, max_examples: int, steps: int, max_exits: int | None
) -> tuple:
    from stateful.hunt import survey
    from stateful.machine import MachineConfig

    s = _settings(max_examples, steps)
    config = None if max_exits is None else MachineConfig(max_exits=max_exits)
    _seed(seed)
    start = time.perf_counter()
    found = survey(load_designs()[design], s, config)
    return design, seed, time.perf_counter() - start, sorted(found.first)


def main_survey(args: argparse.Namespace) -> int:
    designs = load_designs()
    names = [n for n in designs if not args.design or n in args.design]
    jobs = [
        (n, seed, args.max_examples, args.steps, args.max_exits)
        for n in names
        for seed in args.seeds
    ]
    with workers.pool(args.jobs) as pool:
        results = list(pool.map(one_survey, *zip(*jobs, strict=True)))
    print(f"{'design':<14} {'seeds':>5} {'median s':>9}  known property: seeds found in")
    for name in names:
        rows = [r for r in results if r[0] == name]
        known = list(designs[name].known)
        found = {p: sum(p in r[3] for r in rows) for p in known}
        extra = sorted({p for r in rows for p in r[3]} - set(known))
        shown = ", ".join(f"{p} {n}/{len(rows)}" for p, n in found.items()) or "(none known)"
        if extra:
            shown += "; NOT KNOWN: " + ", ".join(extra)
        median = statistics.median(r[2] for r in rows)
        print(f"{name:<14} {len(rows):>5} {median:>9.1f}  {shown}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", action="append")
    parser.add_argument("--property", action="append")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="the seeds to run (default: --runs seeds drawn fresh, printed first)",
    )
    parser.add_argument("--runs", type=int, default=10, help="fresh seeds to draw (default 10)")
    parser.add_argument("--max-examples", type=int, default=DEFAULT_EXAMPLES)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--survey", action="store_true", help="measure the survey pytest runs")
    parser.add_argument(
        "--generator",
        choices=("scheduler", "hypothesis"),
        default="scheduler",
        help="who draws each example's rule calls: pgfrag's random scheduler (what pytest "
        "runs; stateful/scheduler.py) or Hypothesis's rule-based generation, for comparison",
    )
    parser.add_argument(
        "--max-exits",
        type=int,
        default=None,
        help="survey with at most this many mm exits per example (0: no exit_mmap at all, "
        "so nothing that needs an mm to die can be found)",
    )
    args = parser.parse_args(argv)
    if args.seeds is None:
        fresh = random.SystemRandom()
        args.seeds = [fresh.randrange(1, 2**31) for _ in range(args.runs)]
    print("seeds: " + " ".join(str(s) for s in args.seeds), flush=True)
    if args.survey:
        return main_survey(args)
    designs = load_designs()
    jobs = []
    for name, cls in designs.items():
        if args.design and name not in args.design:
            continue
        for prop in cls.known:
            if args.property and prop not in args.property:
                continue
            jobs += [
                (name, prop, seed, args.max_examples, args.steps, args.generator)
                for seed in args.seeds
            ]
    results = []
    with workers.pool(args.jobs) as pool:
        for r in pool.map(one, *zip(*jobs, strict=True)):
            results.append(r)
            took = "missed" if r[4] is None else f"{r[4]:.1f} s, {r[3]} examples"
            print(f"  {r[0]} {r[1]} seed {r[2]}: {took}", flush=True)
    print(
        f"{'design':<14} {'property':<16} {'found':>7} {'median s':>9} {'max s':>7} "
        f"{'examples':>9} {'raw len':>8} {'min len':>8}"
    )
    by_key: dict[tuple[str, str], list[tuple]] = {}
    for r in results:
        by_key.setdefault((r[0], r[1]), []).append(r)
    for (design, prop), rows in by_key.items():
        hits = [r for r in rows if r[4] is not None]
        secs = [r[4] for r in hits]
        print(
            f"{design:<14} {prop:<16} {len(hits):>3}/{len(rows):<3} "
            f"{statistics.median(secs) if secs else float('nan'):>9.1f} "
            f"{max(secs) if secs else float('nan'):>7.1f} "
            f"{statistics.median([r[3] for r in hits]) if hits else float('nan'):>9.0f} "
            f"{statistics.median([r[5] for r in hits]) if hits else float('nan'):>8.0f} "
            f"{statistics.median([r[6] for r in hits]) if hits else float('nan'):>8.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
