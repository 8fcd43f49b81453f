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
    a search of its own;
  - per node of its state graph, what the node's future runs, reaches and
    reports (stateful/mutants/explore.py): a mutant's search takes from it
    every node whose future runs none of the changed statements;
  - every rule call of every node and every drain, with the statements it
    ran (stateful/mutants/recorded.py): a mutant's search takes each one
    that ran none of the changed method's statements instead of running it.

The search is kept on disk (`.pgfrag-cache/`), keyed by the design's
source, the bound and every source file of the model, and computed under
a file lock, so pytest-xdist workers judging one design's mutants share one.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import pickle
import time
from pathlib import Path
from typing import Any

from attrs import define

from designs.base import Design
from stateful.exhaustive.bound import Bound
from stateful.mutants.build import counted_class
from stateful.mutants.explore import Key, Recording, mask_of
from stateful.mutants.recorded import Call, CallKey, bare
from stateful.mutants.source import source_hash
from stateful.replay_file import MODEL_VERSION
from stateful.violations import Violation

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE = ROOT / ".pgfrag-cache" / "mutants"


@define
class Baseline:
    design: str
    bound: str
    properties: frozenset[str]
    ends: tuple[bytes, ...]  # sorted: a bit of a summary's end mask is an index here
    ran: frozenset[tuple[str, int]]  # (file, line) of the design's methods that ran
    where: tuple[tuple[str, tuple[int, ...]], ...]  # statement number -> file, lines
    graph: dict[Key, tuple[int, int, frozenset[str]]]  # explore.Recording.summary
    counts: str
    seconds: float
    calls: dict[Key, dict[CallKey, Call]]  # explore.Recording.calls
    options: dict[Key, tuple[bool, tuple[str, ...]]]  # explore.Recording.options
    drains: dict[bytes, tuple[tuple[Violation, ...], int]]  # violations, statements run

    def method_statements(self, path: str, first: int, last: int) -> int:
        """The statements (bit mask) of the method written at path, lines first..last."""
        hit = [
            i for i, (p, span) in enumerate(self.where) if p == path and first <= span[0] <= last
        ]
        return mask_of(hit)

    def ran_any(self, path: str, lines: tuple[int, ...]) -> bool:
        return any((path, n) in self.ran for n in lines)

    def changed(self, path: str, lines: tuple[int, ...]) -> int:
        """The statements (bit mask) that hold any of these lines."""
        want = set(lines)
        hit = [i for i, (p, span) in enumerate(self.where) if p == path and want & set(span)]
        return mask_of(hit)

    @property
    def end_set(self) -> frozenset[bytes]:
        return frozenset(self.ends)


def search(design_cls: type[Design], bound: Bound, **focus: Any) -> Baseline:
    """The design's own complete search, with the lines of its methods that ran.
    `focus`: the Explorer's `setup` and `operations`, for a test or a focused question."""
    counted, ran, where = counted_class(design_cls)
    explorer = Recording(counted, bound, **focus)
    explorer.record_into(ran)
    result = explorer.run()
    ends = tuple(sorted(explorer.ends))
    graph = explorer.summary({e: i for i, e in enumerate(ends)})
    statements: set[int] = set()
    for mask, _, _ in graph.values():
        statements.update(i for i in range(len(where)) if mask >> i & 1)
    lines = {(where[i][0], n) for i in statements for n in where[i][1]}
    return Baseline(
        design=design_cls.name,
        bound=str(bound),
        properties=frozenset(result.found),
        ends=ends,
        ran=frozenset(lines),
        where=tuple(where),
        graph=graph,
        counts=result.counts(),
        seconds=result.seconds,
        calls=explorer.calls,
        options=explorer.options,
        drains={
            digest: (tuple(bare(v) for v in found), mask_of(explorer.drain_ran.get(digest, set())))
            for digest, found in explorer.drained.items()
        },
    )


@functools.cache
def _model_hash() -> str:
    """Read once per process: the code a process runs is what it loaded, and a
    file edited during a run must not send each worker to search again."""
    h = hashlib.sha256()
    for folder in ("stateful", "designs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


# Baselines read in this process, by cache file: each mutant's test asks for
# its design's, and reading one (every rule call of the search) takes seconds.
_LOADED: dict[Path, Baseline] = {}


def baseline(design_cls: type[Design], bound: Bound) -> Baseline:
    """The design's baseline at bound, from the cache or searched now (once, under a lock)."""
    key = hashlib.sha256(
        f"{design_cls.name}|{source_hash(design_cls)}|{bound}|{MODEL_VERSION}|{_model_hash()}".encode()
    ).hexdigest()[:20]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{design_cls.name}-{key}.pickle"
    loaded = _LOADED.get(path)
    if loaded is not None:
        return loaded
    with (CACHE / f".{design_cls.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            with path.open("rb") as f:
                loaded = _LOADED[path] = pickle.load(f)  # noqa: S301 - pgfrag's own cache
                return loaded
        start = time.perf_counter()
        found = search(design_cls, bound)
        found.seconds = time.perf_counter() - start
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(found, f)
        tmp.replace(path)
        _LOADED[path] = found
        return found
