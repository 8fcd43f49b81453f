"""What the tests of the saved replay files share: where they are, and which
known bugs of the built-in designs they must cover."""

from __future__ import annotations

from pathlib import Path

from designs.registry import load_designs
from stateful.replay_file import ReplayCheck, ReplayFile, check_replay, load_replay

ROOT = Path(__file__).resolve().parent.parent
REPLAYS = ROOT / "replays"
DESIGNS = load_designs()
# A plugin's known bugs are its own repository's to record, not this one's.
BUILTIN = {name: cls for name, cls in DESIGNS.items() if cls.__module__.startswith("designs.")}
KNOWN = sorted((name, prop) for name, cls in BUILTIN.items() for prop in cls.known)
KNOWN_IDS = [f"{design}:{prop}" for design, prop in KNOWN]


def replayed_on_its_design(path: Path) -> tuple[ReplayFile, ReplayCheck]:
    """The file replayed on the design it was recorded on, where its violation must happen."""
    replay = load_replay(path)
    check = check_replay(path, replay, DESIGNS[replay.design])
    assert check.violation is not None, check.summary()
    assert check.violation.property == replay.property
    return replay, check
