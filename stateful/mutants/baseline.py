"""The unmutated design, searched once: what every mutant is judged against.

One complete exhaustive search of the design at the bound records

  - the properties it reaches (its known bugs, and any other): a mutant is
    killed only by a property outside this set;
  - its end states: the fingerprints of every quiescent state (no context
    in flight) it reaches. A surviving mutant that reaches exactly these,
    and the same properties, is proved equivalent within the bound;
  - the lines of the design's methods that ran, anywhere in the search
    (the drains included). A mutant changes nothing until the changed code
    runs, so a mutant none of whose changed lines ran is the design itself
    on every rule call of the search: equivalent within the bound, without
    a search of its own.

The search is kept on disk (`.pgfrag-cache/`), keyed by the design's
source, the bound and every source file of the model, and computed under
a file lock, so pytest-xdist workers judging one design's mutants share one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from attrs import define

from designs.base import Design
from stateful.exhaustive.bound import Bound
from stateful.exhaustive.search import Explorer
from stateful.exhaustive.trial import Outcome
from stateful.mutants.build import counted_class
from stateful.mutants.source import source_hash
from stateful.replay_file import MODEL_VERSION

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE = ROOT / ".pgfrag-cache" / "mutants"


class EndStates(Explorer):
    """The exhaustive search, also keeping the fingerprints of its quiescent
    states; optionally stopping once a property outside `expected` is
    reached at its shortest (shortest-first order: nothing shorter is left)."""

    expected: frozenset[str] | None = None
    ends: set[bytes]

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.ends = set()

    def _root(self) -> tuple[Any, Any]:
        machine, root = super()._root()
        self.ends.add(root.digest)
        return machine, root

    def _emit(self, node: Any, rule: Any, args: dict[str, Any], out: Outcome, irq: bool) -> None:
        super()._emit(node, rule, args, out, irq)
        if out.fatal is None and out.quiescent:
            self.ends.add(out.digest)

    def _done(self, order: tuple[int, ...]) -> bool:
        if self.expected is None:
            return super()._done(order)
        return any(p not in self.expected and b[:4] <= order for p, b in self.best.items())

    @property
    def new(self) -> list[str]:
        """Properties reached that the design does not reach, shortest first."""
        if self.expected is None:
            return []
        return sorted((p for p in self.best if p not in self.expected), key=self.best.__getitem__)


@define
class Baseline:
    design: str
    bound: str
    properties: frozenset[str]
    ends: frozenset[bytes]
    ran: frozenset[tuple[str, int]]  # (file, line) of the design's methods that ran
    counts: str
    seconds: float

    def ran_any(self, path: str, lines: tuple[int, ...]) -> bool:
        return any((path, n) in self.ran for n in lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "design": self.design,
                "bound": self.bound,
                "properties": sorted(self.properties),
                "ends": sorted(e.hex() for e in self.ends),
                "ran": sorted([p, n] for p, n in self.ran),
                "counts": self.counts,
                "seconds": self.seconds,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Baseline:
        doc = json.loads(text)
        return cls(
            design=doc["design"],
            bound=doc["bound"],
            properties=frozenset(doc["properties"]),
            ends=frozenset(bytes.fromhex(e) for e in doc["ends"]),
            ran=frozenset((p, n) for p, n in doc["ran"]),
            counts=doc["counts"],
            seconds=doc["seconds"],
        )


def search(design_cls: type[Design], bound: Bound, **focus: Any) -> Baseline:
    """The design's own complete search, with the lines of its methods that ran.
    `focus`: the Explorer's `setup` and `operations`, for a test or a focused question."""
    counted, ran, where = counted_class(design_cls)
    explorer = EndStates(counted, bound, **focus)
    result = explorer.run()
    lines = {(path, n) for i in ran for path, span in [where[i]] for n in span}
    return Baseline(
        design=design_cls.name,
        bound=str(bound),
        properties=frozenset(result.found),
        ends=frozenset(explorer.ends),
        ran=frozenset(lines),
        counts=result.counts(),
        seconds=result.seconds,
    )


def _model_hash() -> str:
    h = hashlib.sha256()
    for folder in ("stateful", "designs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def baseline(design_cls: type[Design], bound: Bound) -> Baseline:
    """The design's baseline at bound, from the cache or searched now (once, under a lock)."""
    key = hashlib.sha256(
        f"{design_cls.name}|{source_hash(design_cls)}|{bound}|{MODEL_VERSION}|{_model_hash()}".encode()
    ).hexdigest()[:20]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{design_cls.name}-{key}.json"
    with (CACHE / f".{design_cls.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return Baseline.from_json(path.read_text(encoding="utf-8"))
        start = time.perf_counter()
        found = search(design_cls, bound)
        found.seconds = time.perf_counter() - start
        tmp = path.with_suffix(".tmp")
        tmp.write_text(found.to_json(), encoding="utf-8")
        tmp.replace(path)
        return found
