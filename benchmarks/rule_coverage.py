"""How often the random scheduler takes each rule, and each path of the trace asked about.

    python benchmarks/rule_coverage.py --design upstream-6.4
    python benchmarks/rule_coverage.py --design upstream-6.4 --trace "populated already"

Runs --examples examples of the random scheduler (stateful/scheduler.py) on
the design's survey machine, seeds 0 .. N-1, each --steps rule calls long,
as the default profile's random survey draws them. For each rule of the
machine: how many times it was called and in how many examples. For each
--trace TEXT: how many steps of the trace (teardown drain included) hold
TEXT, and in how many examples. A rule or a path the survey never takes is
one it cannot find a bug on.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter

from designs.registry import load_designs
from stateful.budget import DEFAULT_STEPS
from stateful.machine import SURVEY, machine_for
from stateful.rules import rules_of
from stateful.scheduler import run_example


def coverage(
    design: str, examples: int, steps: int, traces: list[str]
) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """Per rule and per trace text: (name, times, examples with at least one)."""
    machine_cls = machine_for(load_designs()[design], SURVEY)
    rules = [r.name for r in rules_of(machine_cls)]
    calls: Counter[str] = Counter()
    rule_examples: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    trace_examples: Counter[str] = Counter()
    for seed in range(examples):
        machine = run_example(machine_cls, random.Random(seed), steps)
        called = Counter(step.rule for step in machine.steps)
        calls.update(called)
        rule_examples.update(called.keys())
        texts = [event.text for event in machine.world.trace.events]
        for wanted in traces:
            n = sum(wanted in t for t in texts)
            seen[wanted] += n
            trace_examples[wanted] += n > 0
    by_rule = [(r, calls[r], rule_examples[r]) for r in rules]
    by_trace = [(t, seen[t], trace_examples[t]) for t in traces]
    return by_rule, by_trace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    designs = sorted(load_designs())
    parser.add_argument("--design", default="upstream-6.4", choices=designs, metavar="NAME")
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--trace", action="append", default=[], metavar="TEXT")
    args = parser.parse_args(argv)
    by_rule, by_trace = coverage(args.design, args.examples, args.steps, args.trace)
    print(
        f"{args.design}: {args.examples:,} examples of the random scheduler "
        f"(seeds 0-{args.examples - 1}, {args.steps} rule calls each)"
    )
    print(f"{'rule or trace text':<32} {'times':>8} {'examples':>9}")
    for name, times, examples in by_rule:
        print(f"{name:<32} {times:>8,} {examples:>9,}")
    for text, times, examples in by_trace:
        print(f"{repr(text):<32} {times:>8,} {examples:>9,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
