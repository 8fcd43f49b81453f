"""The race diagram of every known bug, pinned.

Each `replays/<design>--<property>.json` of a built-in design that lists the
property in `known` is replayed, and its diagram must equal
`tests/golden/<design>--<property>.txt`, byte for byte: a change to the
kernel model, a design or the renderer that changes how a known race reads
shows up here, as a diff, before it reaches a mail. After a change that
improves a diagram, write the goldens again and read them:

    PGFRAG_UPDATE_GOLDEN=1 pytest -n 0 tests/test_golden_diagrams.py

(each test then skips, naming the file it wrote).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from replay_helpers import BUILTIN, KNOWN, KNOWN_IDS, REPLAYS, ROOT, replayed_on_its_design

from stateful.trace import DIAGRAM_WIDTH

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = bool(os.environ.get("PGFRAG_UPDATE_GOLDEN"))


def _known_bug(path: Path) -> bool:
    """A `<design>--<property>.json` of a known bug; `--<hash>` siblings are
    other interleavings of it, kept beside the one that is pinned."""
    design, _, prop = path.stem.partition("--")
    return design in BUILTIN and prop in BUILTIN[design].known


FILES = [path for path in sorted(REPLAYS.glob("*.json")) if _known_bug(path)]


@pytest.mark.parametrize(("design", "prop"), KNOWN, ids=KNOWN_IDS)
def test_every_known_bug_has_a_golden_diagram(design: str, prop: str) -> None:
    golden = GOLDEN / f"{design}--{prop}.txt"
    if UPDATE and not golden.exists():
        pytest.skip(f"{golden.name} is written by the test of its replay file, if there is one")
    assert golden.exists(), (
        f"{golden} missing: record replays/{design}--{prop}.json (`pytest --design {design}`), "
        "then PGFRAG_UPDATE_GOLDEN=1 pytest -n 0 tests/test_golden_diagrams.py"
    )


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_diagram_matches_its_golden(path: Path) -> None:
    _, check = replayed_on_its_design(path)
    diagram = check.diagram

    lines = diagram.splitlines()
    too_wide = [line for line in lines if len(line) > DIAGRAM_WIDTH]
    assert not too_wide, f"lines over {DIAGRAM_WIDTH} columns:\n" + "\n".join(too_wide)
    # The violation closes the diagram, in full: its message, wrapped, is the
    # last paragraph (wrapping only adds whitespace, and may split a word).
    last = diagram.split("\n\n")[-1]
    assert last.startswith("CPU"), last
    assert "".join(last.split()).endswith("".join(str(check.violation).split())), last

    golden = GOLDEN / f"{path.stem}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(diagram + "\n", encoding="utf-8")
        pytest.skip(f"PGFRAG_UPDATE_GOLDEN: wrote {golden.relative_to(ROOT)}")
    assert golden.exists(), f"{golden} missing: PGFRAG_UPDATE_GOLDEN=1 writes it"
    expected = golden.read_text(encoding="utf-8")
    if diagram + "\n" != expected:
        diff = difflib.unified_diff(
            expected.splitlines(),
            lines,
            f"{golden.relative_to(ROOT)} (golden)",
            f"{path.relative_to(ROOT)} (replayed now)",
            lineterm="",
        )
        pytest.fail(
            "the diagram changed; if it reads better, PGFRAG_UPDATE_GOLDEN=1 writes it:\n"
            + "\n".join(diff),
            pytrace=False,
        )
