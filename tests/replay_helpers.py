"""What the tests of the saved replay files share: where they are, and which
known bugs of the built-in designs they must cover."""

from __future__ import annotations

from pathlib import Path

from designs.registry import load_designs

ROOT = Path(__file__).resolve().parent.parent
REPLAYS = ROOT / "replays"
DESIGNS = load_designs()
# A plugin's known bugs are its own repository's to record, not this one's.
BUILTIN = {name: cls for name, cls in DESIGNS.items() if cls.__module__.startswith("designs.")}
KNOWN = sorted((name, prop) for name, cls in BUILTIN.items() for prop in cls.known)
KNOWN_IDS = [f"{design}:{prop}" for design, prop in KNOWN]
