"""The single-property hunt, and the survey -> verdict path, on small budgets."""

from __future__ import annotations

import pytest

from designs.registry import load_designs
from stateful.hunt import hunt, survey, verdict
from stateful.violations import Lockdep
from tests.kernel_helpers import small_search

DESIGNS = load_designs()
SMALL = small_search(300)


def test_hunt_raises_the_property_with_its_minimal_diagram() -> None:
    with pytest.raises(Lockdep) as info:
        hunt(DESIGNS["hugh-hh"], "lockdep", SMALL)
    text = str(info.value)
    assert "inconsistent {SOFTIRQ-ON-W} -> {IN-SOFTIRQ-W} usage" in text
    assert "CPU0" in text and "<-- lockdep" in text
    replay_lines = text.split("replay (rule calls):\n")[1].splitlines()
    assert 2 <= len(replay_lines) <= 6
    assert all(line.startswith("  state.") for line in replay_lines)


def test_hunt_finds_nothing_in_a_design_without_the_bug() -> None:
    hunt(DESIGNS["upstream-6.4"], "lockdep", SMALL)


def test_survey_records_each_property_once_and_verdict_raises_only_those() -> None:
    found = survey(DESIGNS["hugh-hh"], SMALL)
    assert "lockdep" in found.first
    assert found.examples >= SMALL.max_examples
    with pytest.raises(Lockdep):
        verdict(DESIGNS["hugh-hh"], "lockdep", found)
    verdict(DESIGNS["hugh-hh"], "double-free", found)  # not seen: returns
