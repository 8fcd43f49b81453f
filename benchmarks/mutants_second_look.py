"""The survivors of a mutation run judged again at a second bound, and the score over both.

    python benchmarks/mutants_second_look.py upstream-6.4 --bound S=1,C=2,P=1,I=1 -n 2

It reads the first run's table (artifacts/mutants/DESIGN.json, written by
`pgfrag --mutants DESIGN`), runs `pgfrag --mutants DESIGN --bound B2` on
its survivors only (their IDs as `-k`), writing to --out, and prints, per
design: the score at the first bound, the survivors killed at B2 and by
what, and the score over both bounds, killed at B or at B2 / (all -
invalid - proved equivalent at B). A mutant is killed at B2 by a property
the unmutated design does not reach at B2 (its own baseline there): a
design whose own bug masks a mutant at B may not reach that bug at B2.
A mutant proved equivalent at B2 only still counts as a survivor: it
differs from the design at B.

The first run's table must be of the design's current source: the IDs
name lines, and a table whose source hash differs is refused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from designs.registry import load_designs
from stateful.mutants.source import source_hash

ROOT = Path(__file__).resolve().parent.parent


def survivors(table: dict[str, object]) -> list[str]:
    return [str(r["id"]) for r in table["rows"] if r["kind"] == "survived"]  # type: ignore[attr-defined, index]


def keyword(ids: list[str]) -> str:
    """A pytest -k expression choosing these IDs; -k cannot read `#`, so a
    numbered twin (`flip-bit2#2`) is chosen by its first twin's ID, and the
    extra mutants it brings are left out of the counts."""
    return " or ".join(sorted({i.split("#")[0] for i in ids}))


def combined(first: dict[str, object], second: dict[str, object]) -> str:
    rows = first["rows"]  # type: ignore[index]
    alive = set(survivors(first))
    killed = sum(r["kind"] == "killed" for r in rows)  # type: ignore[attr-defined]
    judged = len(rows) - sum(r["kind"] in ("invalid", "equivalent") for r in rows)  # type: ignore[attr-defined]
    again = [r for r in second["rows"] if r["id"] in alive]  # type: ignore[attr-defined, index]
    if len(again) != len(alive):
        sys.exit(f"the second run judged {len(again)} of the {len(alive)} survivors")
    by = Counter(r["property"] for r in again if r["kind"] == "killed")
    more = sum(by.values())
    return (
        f"{first['design']}: at B {100 * killed / judged:.1f}% ({killed} / {judged}); "
        f"{len(alive)} survivors, {more} killed at B2"
        + (f" ({', '.join(f'{p} {n}' for p, n in by.most_common())})" if by else "")
        + f"; over both {100 * (killed + more) / judged:.1f}% ({killed + more} / {judged})"
        f"\n  B = {first['bound']}\n  B2 = {second['bound']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("design", nargs="+")
    parser.add_argument("--bound", required=True, help="the second bound, B2")
    parser.add_argument("--first", default=str(ROOT / "artifacts" / "mutants"), metavar="DIR")
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "mutants-second"), metavar="DIR")
    parser.add_argument("-n", default="0", help="pytest-xdist workers")
    args = parser.parse_args(argv)
    designs = load_designs()
    lines = []
    for name in args.design:
        if name not in designs:
            parser.error(f"no such design {name!r}; valid: {', '.join(sorted(designs))}")
        path = Path(args.first) / f"{name}.json"
        if not path.exists():
            parser.error(f"{path}: no first run; run `pgfrag --mutants {name}` first")
        first = json.loads(path.read_text())
        if first["design_source"] != source_hash(designs[name]):
            parser.error(f"{path}: made from another source of {name}; run it again")
        ids = survivors(first)
        if ids:
            command = [sys.executable, "-m", "stateful.cli", "--mutants", name, "--bound"]
            command += [args.bound, "-k", keyword(ids), "--mutants-out", args.out, "-n", args.n]
            subprocess.run([*command, "-p", "no:randomly", "-q"], cwd=ROOT, check=False)
            second = json.loads((Path(args.out) / f"{name}.json").read_text())
        else:
            second = {"rows": [], "bound": args.bound}
        lines.append(combined(first, second))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
