"""The exhaustive search as mutation analysis runs it: end states, lines run, and reuse.

EndStates is the exhaustive mode's Explorer that also keeps the
fingerprints of the quiescent states it reaches (its end states), and can
stop once a property outside `expected` is reached at its shortest.

Recording (the design's own search) also keeps, for every node of the
state graph (a state with the budget it was reached with, the Explorer's
own cache key), the statements of the design's methods that ran in its
rule calls and in the drain of the states they reached. Summed over the
graph (`summary`), each node gets what its whole future within the bound
runs, reaches (end states) and reports (properties).

Borrowing (a mutant's search) uses that summary. Until the changed code
runs, a mutant is its design: a node of the mutant's search that is also a
node of the design's (same fingerprint, same budget left), and whose whole
future in the design's search never runs a changed statement, has the
same future in the mutant. It is not explored again: its end states and
properties are the design's. A node of the design's whose future does run
a changed statement is explored, but each of its rule calls that ran none
of the changed method's statements in the design's search is taken from
that search rather than run (stateful/mutants/recorded.py). The mutated
method's code has its own qualified name in generator frames, so a state
with the changed code in flight never matches one of the design's. Both
searches run the counted classes (stateful/mutants/build.py), so the code
in flight is the same bytecode in both. tests/test_mutation.py checks on
small bounds that the verdicts and end states are the same with and
without borrowing.
"""

from __future__ import annotations

import time
from collections.abc import Container
from typing import Any

import attrs

from stateful.exhaustive import trial
from stateful.exhaustive.result import Cost, Counterexample
from stateful.exhaustive.search import Explorer, Node
from stateful.exhaustive.trial import Outcome
from stateful.mutants.recorded import Call, CallKey, call_key, record, taken
from stateful.mutants.scenario import DesignPasses
from stateful.replay import Step
from stateful.rules import Rule
from stateful.violations import Violation

Key = tuple[bytes, int, int, int, int]


def key_of(node: Node) -> Key:
    c = node.cost
    return (node.digest, c.setup, c.concurrent, c.preemptions, c.interrupts)


class EndStates(Explorer):
    """The search, keeping its end states; optionally stopping at the first new violation.

    With `expected` (the design's own properties) a kill is a property outside
    it; with `passes` too (the design's verdict on a scenario,
    stateful/mutants/scenario.py), also a property in it reached in a
    scenario the design passes (`fresh`).
    """

    expected: frozenset[str] | None = None
    passes: DesignPasses | None = None
    ends: set[bytes]
    fresh: dict[str, Counterexample]
    _fresh_order: dict[str, tuple[int, ...]]

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # Every call is a trial here: Recording keeps what each one ran, by
        # call, and Borrowing takes the design's calls by the same key.
        self.pruning = attrs.evolve(self.pruning, read_pauses=False, after_interrupt=False)
        self.ends = set()
        self.fresh, self._fresh_order = {}, {}

    def _root(self) -> tuple[Any, Node]:
        machine, root = super()._root()
        self.ends.add(root.digest)
        return machine, root

    def _emit(self, node: Node, rule: Any, args: dict[str, Any], out: Outcome, irq: bool) -> None:
        super()._emit(node, rule, args, out, irq)
        if out.fatal is None and out.quiescent:
            self.ends.add(out.digest)

    def _found(
        self, violation: Violation, path: tuple[Step, ...], cost: Cost, in_drain: bool
    ) -> None:
        super()._found(violation, path, cost, in_drain)
        prop = violation.property
        if self.passes is None or self.expected is None or prop not in self.expected:
            return
        order = (*cost.order, int(in_drain))
        if any(b <= order for b in self._kill_orders()):
            return  # only a shorter kill would change the verdict
        if self.passes(prop, path, cost, in_drain):
            self._fresh_order[prop] = order
            self.fresh[prop] = Counterexample(
                property=prop,
                steps=path,
                cost=cost,
                message=str(violation).splitlines()[0],
                in_drain=in_drain,
                seconds=time.perf_counter() - self._start,
                interleavings=self.result.executed,
            )

    def _kill_orders(self) -> list[tuple[int, ...]]:
        assert self.expected is not None
        new = [b for p, b in self.best.items() if p not in self.expected]
        return new + list(self._fresh_order.values())

    def _done(self, order: tuple[int, ...]) -> bool:
        if self.expected is None:
            return super()._done(order)
        return any(b[:4] <= order for b in self._kill_orders())

    @property
    def new(self) -> list[str]:
        """Properties reached that the design does not reach, shortest first."""
        if self.expected is None:
            return []
        return sorted((p for p in self.best if p not in self.expected), key=self.best.__getitem__)

    def kills(self) -> list[tuple[str, Counterexample, bool]]:
        """Every kill, shortest first: (property, counterexample, whether it is
        a property the design reaches, here in a scenario the design passes)."""
        ranked = [(self.best[p], p, self.result.found[p], False) for p in self.new]
        ranked += [(self._fresh_order[p], p, c, True) for p, c in self.fresh.items()]
        return [(p, c, in_passed) for _, p, c, in_passed in sorted(ranked, key=lambda r: r[0])]


class Recording(EndStates):
    """The design's own search, keeping per node what its rule calls ran and reported."""

    ran: set[int]  # the counted class's set: statements run since it was last cleared
    local: dict[Key, set[int]]
    props: dict[Key, set[str]]
    drain_ran: dict[bytes, set[int]]
    # For a mutant's search to take (stateful/mutants/recorded.py): every
    # rule call of every node, and what each node offers.
    calls: dict[Key, dict[CallKey, Call]]
    options: dict[Key, tuple[bool, tuple[str, ...]]]
    _here: Key | None = None

    def record_into(self, ran: set[int]) -> None:
        self.ran = ran
        self.local, self.props, self.drain_ran = {}, {}, {}
        self.calls, self.options = {}, {}

    def _expand(self, node: Node) -> None:
        self._here = key_of(node)
        self.local.setdefault(self._here, set())
        self.props.setdefault(self._here, set())
        self.calls.setdefault(self._here, {})
        super()._expand(node)

    def _options(self, node: Node) -> tuple[Any, bool, list[Rule]]:
        machine, ready, enabled = super()._options(node)
        self.options[key_of(node)] = (ready, tuple(r.name for r in enabled))
        return machine, ready, enabled

    def _trial(
        self,
        node: Node,
        rule: Any,
        args: dict[str, Any],
        interrupt_points: bool = False,
        read_pauses: Container[int] | None = None,
        interrupt_keys: bool = False,
    ) -> Outcome:
        self.result.executed += 1
        machine, self._spare = self._spare, None
        if machine is None:
            machine = self._replay(node.path)
        self.ran.clear()  # the replay to the node is the node's past, not its future
        key = call_key(rule.name, args)
        out = trial.call(machine, rule.name, args, self.pruning.symmetry, interrupt_points)
        assert self._here is not None
        self.local[self._here] |= self.ran
        self.calls[self._here][key] = record(out, _mask(self.ran), args)
        if out.fatal is not None:
            self.props[self._here].add(out.fatal.property)
        self.props[self._here].update(w.property for w in out.warnings)
        return out

    def _drain_once(self, machine: Any, digest: bytes, path: Any, cost: Any) -> None:
        if digest in self.drained:
            super()._drain_once(machine, digest, path, cost)
            return
        self.ran.clear()
        super()._drain_once(machine, digest, path, cost)
        self.drain_ran[digest] = set(self.ran)

    def summary(self, end_index: dict[bytes, int]) -> dict[Key, tuple[int, int, frozenset[str]]]:
        """Per node: (statements its future runs, end states it reaches, properties
        it reports), the first two as bit masks (statement number, end_index)."""
        out: dict[Key, tuple[int, int, frozenset[str]]] = {}
        by_number: dict[int, tuple[int, int, frozenset[str]]] = {}
        stack = [(0, False)]
        while stack:
            number, ready = stack.pop()
            if number in by_number:
                continue
            node = self.nodes[number]
            if not ready:
                stack.append((number, True))
                stack.extend((c, False) for c in node.children if c not in by_number)
                continue
            key = key_of(node)
            ran = self.local.get(key, set()) | self.drain_ran.get(node.digest, set())
            mask = _mask(ran)
            ends = 1 << end_index[node.digest] if node.digest in end_index else 0
            props = set(self.props.get(key, ())) | {
                v.property for v in self.drained.get(node.digest, ())
            }
            for c in node.children:
                r, e, p = by_number[c]
                mask, ends = mask | r, ends | e
                props |= p
            by_number[number] = (mask, ends, frozenset(props))
            out[key] = by_number[number]
        return out


class Borrowing(EndStates):
    """A mutant's search: a node the design's search has, whose future there runs
    none of the changed statements, is taken from the design's summary."""

    graph: dict[Key, tuple[int, int, frozenset[str]]]
    changed: int  # the design's statements (bit mask) the mutant changes
    borrowed_ends: int
    borrowed_props: set[str]
    borrowed: int
    _skip_drain: bool = False
    # The design's rule calls, drains and node options (recorded.py), and the
    # statements (bit mask) of the changed method: a call that ran none is taken.
    base_calls: dict[Key, dict[CallKey, Call]]
    base_options: dict[Key, tuple[bool, tuple[str, ...]]]
    base_drains: dict[bytes, tuple[tuple[Violation, ...], int]]
    method: int = 0
    calls_taken: int = 0
    _here_calls: dict[CallKey, Call] | None = None

    def borrow_from(self, graph: dict[Key, tuple[int, int, frozenset[str]]], changed: int) -> None:
        self.graph, self.changed = graph, changed
        self.borrowed_ends, self.borrowed_props, self.borrowed = 0, set(), 0
        self.take_calls({}, {}, {}, 0)

    def take_calls(
        self,
        calls: dict[Key, dict[CallKey, Call]],
        options: dict[Key, tuple[bool, tuple[str, ...]]],
        drains: dict[bytes, tuple[tuple[Violation, ...], int]],
        method: int,
    ) -> None:
        self.base_calls, self.base_options, self.base_drains = calls, options, drains
        self.method = method

    def _expand(self, node: Node) -> None:
        self._here_calls = self.base_calls.get(key_of(node))
        super()._expand(node)
        self._here_calls = None

    def _options(self, node: Node) -> tuple[Any, bool, list[Rule]]:
        known = self.base_options.get(key_of(node))
        if known is None:
            return super()._options(node)
        ready, names = known
        return None, ready, [r for r in self.rules if r.name in names]

    def _trial(
        self,
        node: Node,
        rule: Any,
        args: dict[str, Any],
        interrupt_points: bool = False,
        read_pauses: Container[int] | None = None,
        interrupt_keys: bool = False,
    ) -> Outcome:
        if self._here_calls is not None:
            call = self._here_calls.get(call_key(rule.name, args))
            if (
                call is not None
                and not call.ran & self.method
                and (call.interrupt_points is not None or not interrupt_points)
            ):
                self.calls_taken += 1
                return taken(call, args)
        return super()._trial(node, rule, args, interrupt_points)

    def _push(self, parent: Node | None, node: Node) -> None:
        key = key_of(node)
        self._skip_drain = False
        known = self.graph.get(key)
        if key in self.index or known is None or known[0] & self.changed or self._judged(known[2]):
            super()._push(parent, node)
            return
        super()._push(parent, node)
        self.nodes[self.index[key]].expanded = True  # its future is the design's
        self.borrowed += 1
        self.borrowed_ends |= known[1]
        self.borrowed_props |= known[2]
        self._skip_drain = True

    def _judged(self, props: frozenset[str]) -> bool:
        """Whether the node's future reaches a property whose every violation
        here is judged against the design's scenario (so it is explored, not
        taken): reached by another way than the design's, the same future
        may break it in a scenario the design passes."""
        return self.passes is not None and bool(self.expected and props & self.expected)

    def _drain_once(self, machine: Any, digest: bytes, path: Any, cost: Any) -> None:
        if self._skip_drain:
            self._skip_drain = False
            return
        if machine is None and not (self.pruning.cache and digest in self.drained):
            # A call was taken: its state drains from the design's drain, or here.
            known = self.base_drains.get(digest) if self.pruning.cache else None
            if known is not None and not known[1] & self.method:
                self.drained[digest] = list(known[0])
            else:
                machine = self._replay(path)
        super()._drain_once(machine, digest, path, cost)


def _mask(numbers: set[int]) -> int:
    m = 0
    for n in numbers:
        m |= 1 << n
    return m


def mask_of(numbers: set[int] | list[int]) -> int:
    return _mask(set(numbers))
