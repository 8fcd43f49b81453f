"""The progress line: printed by the clock, and never changing the run."""

from __future__ import annotations

from stateful.progress import Progress


def test_a_line_every_interval_and_a_last_one() -> None:
    lines: list[str] = []
    now = [0.0]
    progress = Progress(write=lines.append, every=10, clock=lambda: now[0])
    progress.begin("hugh-hh", 4000)
    for examples in range(1, 31):
        now[0] += 1
        progress.tick(examples, {"deadlock": examples // 10})
    progress.end(30, {"deadlock": 3, "lockdep": 7})
    assert lines == [
        "pgfrag: hugh-hh: 10 runs in 10s (budget 4000 examples); reports: deadlock 1",
        "pgfrag: hugh-hh: 20 runs in 20s (budget 4000 examples); reports: deadlock 2",
        "pgfrag: hugh-hh: 30 runs in 30s (budget 4000 examples); reports: deadlock 3",
        "pgfrag: hugh-hh: 30 runs in 30s (budget 4000 examples); reports: deadlock 3, lockdep 7"
        " (done)",
    ]


def test_a_short_run_says_nothing() -> None:
    lines: list[str] = []
    progress = Progress(write=lines.append, every=10, clock=lambda: 0.0)
    progress.begin("gerald", 30)
    progress.tick(1, {})
    progress.end(1, {})
    assert lines == []
