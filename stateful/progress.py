"""A progress line per design on long runs.

A survey of the thorough profile runs for minutes per design with nothing
on the screen; every `every` seconds it says how far it is and what it has
found so far. Output only: the clock decides when a line is printed, never
what the search does, so a seeded run stays the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from attrs import define, field


@define
class Progress:
    write: Callable[[str], None] | None = None  # None: silent (library use, tests)
    every: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _design: str = ""
    _total: int = 0
    _started: float = 0.0
    _last: float = 0.0
    _lines: int = field(default=0)

    def begin(self, design: str, total: int) -> None:
        self._design, self._total, self._lines = design, total, 0
        self._started = self._last = self.clock()

    def tick(self, examples: int, reports: Mapping[str, int]) -> None:
        if self.write is None or self.every <= 0:
            return
        now = self.clock()
        if now - self._last < self.every:
            return
        self._last = now
        self._lines += 1
        self.write(self._line(examples, reports, now))

    def end(self, examples: int, reports: Mapping[str, int]) -> None:
        """A last line, if the design was long enough to have had one."""
        if self.write is not None and self._lines:
            self.write(self._line(examples, reports, self.clock()) + " (done)")

    def _line(self, examples: int, reports: Mapping[str, int], now: float) -> str:
        found = ", ".join(f"{p} {n}" for p, n in sorted(reports.items())) or "nothing yet"
        # Runs, not examples: Hypothesis's budget counts only the valid ones.
        return (
            f"pgfrag: {self._design}: {examples} runs in {now - self._started:.0f}s "
            f"(budget {self._total} examples); reports: {found}"
        )


# The survey's progress; conftest.py gives it a writer that gets past pytest's capture.
PROGRESS = Progress()
