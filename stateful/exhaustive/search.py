"""The bounded exhaustive search: every scenario within the bound, every interleaving of each.

It searches the KernelMachine's own rule calls (stateful/exhaustive/rules.py),
shortest first: a priority queue ordered by operations, then preemptions,
then interrupts, then rule calls. A rule call only ever adds to that order,
so the first counterexample found for a property is a shortest one, and
every counterexample is a replay file like the others.

Each rule call is tried on a fresh machine replayed to its node
(stateful/exhaustive/trial.py), or, for a call with a pause, read on the
way through the same call run without one: up to the pause its steps are
the same (`Pruning.read_pauses`; a new state read so is replayed to drain
it, and must read the same). A call with an interrupt whose interrupt fires
in a state, on a context, where an earlier call's interrupt fired is not
run: from there it runs the same steps, so its outcomes are that call's
(`Pruning.after_interrupt`; the state is read where the call without the
interrupt passes the point, `AfterInterrupt`). After it the state is
fingerprinted (stateful/fingerprint.py) with its CPUs numbered canonically
(stateful/symmetry.py: a state and its mirror, the same but for which CPU
is which, are one state, `Pruning.symmetry`); a state already reached with
the same cost is not explored again, only counted (`Pruning.cache`). Each
state is drained once (teardown) for deadlock and leaks.

The values of a rule's arguments are narrowed without losing a call
(`Pruning`): a pick to the number of candidates it is taken modulo; a pause
to the points before the operation ends (a pause past the end is no pause);
an interrupt to the points where one fires, read on the call without it
(after each of its steps, whether callbacks are ready where bh is enabled:
`KernelMachine._interrupt_fires`), and only when callbacks are ready
somewhere (grace periods end between rule calls, so none becomes ready
inside one); a pause after an interrupt to the points at or after it
(the machine runs the pause over the CPU's steps, the softirq's included,
and a pause before the interrupt is the same call without it). Each
narrowing can be switched off; tests/test_exhaustive.py shows that the
violations and the states reached are the same with and without each.
"""

from __future__ import annotations

import heapq
import itertools
import re
import time
from collections.abc import Callable, Container, Iterator
from typing import Any, TypeVar

import attrs
from attrs import define, field

from designs.base import Design
from stateful.exhaustive import trial
from stateful.exhaustive.bound import Bound
from stateful.exhaustive.result import Cost, Counterexample, Result
from stateful.exhaustive.rules import Budget, Pick, pick_domain
from stateful.exhaustive.trial import EVERY_PAUSE, InterruptKey, InterruptPoint, Outcome
from stateful.fingerprint import text
from stateful.machine import machine_for
from stateful.replay import Step
from stateful.rules import PAUSE, Rule, rules_of
from stateful.violations import Violation

_Kept = TypeVar("_Kept")


@define(frozen=True)
class Pruning:
    cache: bool = True  # a state reached again with the same cost is counted, not explored
    picks: bool = True  # a pick only up to the number of candidates it is taken modulo
    pauses: bool = True  # a pause only before the operation's end
    interrupts: bool = True  # an irq only where it fires; a pause after it only at or after it
    # Two states that differ only in how their CPUs are numbered are one
    # state (stateful/symmetry.py).
    symmetry: bool = True
    # Not a pruning, a shortcut: the state of each pause of a call is read on
    # the way through a run of the call that does not pause (its steps up to
    # there are the same), not replayed (stateful/exhaustive/trial.py).
    read_pauses: bool = True
    # Also a shortcut: a call whose interrupt fires in a state (and on a
    # context) where an earlier call's interrupt fired goes on as that one
    # did; its outcomes are that call's, not run again (`AfterInterrupt`).
    after_interrupt: bool = True
    # Without `pauses` / `interrupts`, every value below this is tried.
    full_range: int = 24


ALL = Pruning()
NONE = Pruning(
    cache=False,
    picks=False,
    pauses=False,
    interrupts=False,
    symmetry=False,
    read_pauses=False,
    after_interrupt=False,
)


@define
class Node:
    path: tuple[Step, ...]  # the shortest way here found so far
    cost: Cost
    digest: bytes
    scenario: tuple[Any, ...]
    expanded: bool = False
    children: list[int] = field(factory=list)  # the nodes its calls lead to, by number
    ends: int = 0  # its calls that end in a violation, or change nothing


@define
class Explorer:
    design_cls: type[Design]
    bound: Bound
    pruning: Pruning = ALL
    # Stop once each of these properties has its shortest counterexample.
    stop_after: frozenset[str] | None = None
    progress: Callable[[str], None] | None = None
    progress_every: float = 30.0
    # Only these operation rules (None: all): for a test or a focused question;
    # what is proved is then proved for these operations only.
    operations: frozenset[str] | None = None
    # Start from the state these operations reach, each run atomically from
    # boot, as the scenario's setup (they count in S): every interleaving of
    # every continuation of one setup.
    setup: tuple[Step, ...] = ()

    machine_cls: type = field(init=False)
    rules: tuple[Rule, ...] = field(init=False)
    result: Result = field(init=False)
    best: dict[str, tuple[int, ...]] = field(factory=dict)
    frontier: list[tuple[tuple[int, ...], int, int]] = field(factory=list)
    nodes: list[Node] = field(factory=list)
    index: dict[Any, int] = field(factory=dict)  # (state, cost but its calls) -> node
    # The violations each state's drain reports; most report none, and () is one object.
    drained: dict[bytes, tuple[Violation, ...]] = field(factory=dict)
    scenarios: set[tuple[Any, ...]] = field(factory=set)
    # For the soundness tests: every state reached, every violation seen (where).
    states: set[bytes] = field(factory=set)
    violations: set[tuple[str, str]] = field(factory=set)
    longest_op: int = 0
    # What follows an interrupt, by the state it fired in (Pruning.after_interrupt).
    after_interrupts: dict[tuple[InterruptKey, bool], AfterInterrupt] = field(factory=dict)
    # The steps, scenarios and costs the nodes hold, and the sets of stops
    # the after_interrupts hold, each kept once (_once): they recur.
    kept: dict[tuple[Any, Any], Any] = field(factory=dict)
    _seq: Iterator[int] = field(factory=itertools.count)
    # A machine already replayed to the node being expanded, for its first call.
    _spare: Any = None
    _start: float = 0.0
    _last_progress: float = 0.0

    def __attrs_post_init__(self) -> None:
        config = self.bound.machine_config()
        self.machine_cls = machine_for(self.design_cls, None, config)
        self.rules = tuple(
            r
            for r in rules_of(self.machine_cls)
            if not r.operation or self.operations is None or r.name in self.operations
        )
        self.result = Result(self.design_cls.name, self.bound)

    # --- running rule calls -------------------------------------------------

    def _replay(self, path: tuple[Step, ...]) -> Any:
        return trial.replay(self.machine_cls, path)

    def _trial(
        self,
        node: Node,
        rule: Rule,
        args: dict[str, Any],
        interrupt_points: bool = False,
        read_pauses: Container[int] | None = None,
        interrupt_keys: bool = False,
    ) -> Outcome:
        """The call at node; with read_pauses (its pause a Budget), also the
        outcome of each of those shorter pauses; with interrupt_keys, the
        state at each interrupt point (trial.call)."""
        self.result.executed += 1
        machine, self._spare = self._spare, None
        if machine is None:
            machine = self._replay(node.path)
        pauses = None if read_pauses is None else {}
        return trial.call(
            machine,
            rule.name,
            args,
            self.pruning.symmetry,
            interrupt_points,
            pauses,
            EVERY_PAUSE if read_pauses is None else read_pauses,
            interrupt_keys,
        )

    # --- the search ---------------------------------------------------------

    def _root(self) -> tuple[Any, Node]:
        machine = self._replay(())
        scenario: tuple[Any, ...] = ()
        for n, step in enumerate(self.setup, 1):
            getattr(machine, step.rule)(**dict(step.args))
            machine.design_invariants()
            if not all(cpu.idle for cpu in machine.world.cpus):
                raise ValueError(f"setup step {n} ({step}) did not run atomically to its end")
            scenario = (*scenario, (step.rule, *((k, v) for k, v in step.args if _object(k))))
        cost = Cost(setup=len(self.setup), calls=len(self.setup))
        if not cost.within(self.bound):
            raise ValueError(f"the setup has {len(self.setup)} operations; the bound allows S")
        digest = trial.state_of(machine, self.pruning.symmetry)
        return machine, Node(self.setup, cost, digest, scenario)

    def run(self) -> Result:
        self._start = self._last_progress = time.perf_counter()
        machine, root = self._root()
        self._push(None, root)
        self._drain_once(machine, root.digest, root.path, root.cost)
        complete = True
        while self.frontier:
            order, _, number = heapq.heappop(self.frontier)
            node = self.nodes[number]
            if node.expanded or node.cost.order != order:
                continue  # a shorter way here was queued again, and went first
            if self._done(order):
                complete = False
                break
            node.expanded = True
            self._expand(node)
            self._report_progress()
        self.result.complete = complete
        self.result.seconds = time.perf_counter() - self._start
        self.result.scenarios = len(self.scenarios)
        self.result.states = len(self.states)
        self.result.interleavings = self._interleavings()
        return self.result

    def _done(self, order: tuple[int, ...]) -> bool:
        if self.stop_after is None:
            return False
        return all(p in self.best and self.best[p][:4] <= order for p in self.stop_after)

    def _push(self, parent: Node | None, node: Node) -> None:
        """Queue node, or count it as one already queued or explored.

        Two ways to the same state with the same operations, preemptions and
        interrupts used have the same futures within the bound: the state is
        explored once, from the way with the fewest rule calls. A later way
        has at least as many: nodes are explored in the search order, and a
        rule call only adds to it.
        """
        c = node.cost
        key: Any = self.cache_key(node) if self.pruning.cache else len(self.nodes)
        number = self.index.get(key)
        if number is None:
            number = self.index[key] = len(self.nodes)
            self.nodes.append(node)
            self.states.add(node.digest)
        else:
            held = self.nodes[number]
            if held.expanded or held.cost.order <= c.order:
                if parent is not None:
                    parent.children.append(number)
                return
            held.path, held.cost, held.scenario = node.path, node.cost, node.scenario
        if parent is not None:
            parent.children.append(number)
        heapq.heappush(self.frontier, (c.order, next(self._seq), number))

    def canonical_states(self) -> set[bytes]:
        """The states reached, with their CPUs numbered canonically: `states`
        when the search reads them so, else each node replayed and read so
        (for the soundness tests of Pruning.symmetry)."""
        if self.pruning.symmetry:
            return set(self.states)
        return {trial.state_of(self._replay(n.path), True) for n in self.nodes}

    def _once(self, value: _Kept) -> _Kept:
        """The equal value kept already, if any: each node (or outcome kept
        after an interrupt) would otherwise hold its own copy."""
        return self.kept.setdefault((value, _types(value)), value)

    @staticmethod
    def cache_key(node: Node) -> tuple[Any, ...]:
        """What the state cache tells nodes apart by: the state, and the budget used."""
        c = node.cost
        return (node.digest, c.setup, c.concurrent, c.preemptions, c.interrupts)

    def _interleavings(self) -> int:
        """Rule-call sequences within the bound: every path from boot, counted
        over the graph of states (one the search explored counts for all the
        ways to it)."""
        # Rule calls only add to the cost, so the graph has no cycle: count
        # each node once all the nodes its calls lead to are counted.
        done: dict[int, int] = {}
        stack = [(0, False)]
        while stack:
            number, ready = stack.pop()
            if number in done:
                continue
            node = self.nodes[number]
            if ready:
                done[number] = node.ends + sum(1 + done[c] for c in node.children)
                continue
            stack.append((number, True))
            stack.extend((c, False) for c in node.children if c not in done)
        return done[0]

    def _expand(self, node: Node) -> None:
        machine, ready, enabled = self._options(node)
        self._spare = machine
        for rule in enabled:
            self._calls(node, rule, ready)
        self._spare = None

    def _options(self, node: Node) -> tuple[Any, bool, list[Rule]]:
        """A machine replayed to node, whether callbacks are ready on any CPU
        there, and the rules it can call within its budget."""
        machine = self._replay(node.path)
        ready = any(machine.world.rcu.has_ready(cpu.id) for cpu in machine.world.cpus)
        enabled = [r for r in self.rules if self._affordable(node.cost, r) and r.enabled(machine)]
        return machine, ready, enabled

    def _affordable(self, cost: Cost, rule: Rule) -> bool:
        b = self.bound
        if rule.operation:
            return (cost.in_setup and cost.setup < b.setup) or cost.concurrent < b.concurrent
        if rule.name == "softirq":
            return cost.interrupts < b.interrupts
        return True

    def _calls(self, node: Node, rule: Rule, ready: bool) -> None:
        """Every call of `rule` at node, each argument narrowed as Pruning allows."""
        picks = [a for a in rule.args if a.kind == "pick"]
        flags = [a for a in rule.args if a.kind == "flag"]
        moduli = {a.name: set() for a in picks}
        raw = {a.name: [False] for a in picks}
        probe_args = {a.name: Pick(0, moduli[a.name], raw[a.name]) for a in picks}
        probe_args |= {a.name: False for a in flags}
        probe_args |= {a.name: 0 for a in rule.args if a.kind == "irq"}
        seen: list[int] = []
        probe_args |= {a.name: Budget(seen) for a in rule.args if a.kind == "pause"}
        reads = EVERY_PAUSE if self._reads_pauses(node, rule) else None
        keys = self._keys_interrupts(node, rule, ready)
        probe = self._trial(node, rule, probe_args, True, reads, keys)
        domains = [
            pick_domain(a, moduli[a.name], raw[a.name][0]) if self.pruning.picks else a.values
            for a in picks
        ]
        domains += [tuple(v for v in a.values if self.bound.allows(a.name, v)) for a in flags]
        names = [a.name for a in picks + flags]
        for values in itertools.product(*domains):
            fixed = dict(zip(names, values, strict=True))
            first = (probe, seen) if not any(values) else None
            self._schedules(node, rule, fixed, first, ready)

    def _keys_interrupts(self, node: Node, rule: Rule, ready: bool) -> bool:
        """Whether the calls of rule at node with an interrupt are keyed by
        the state it fires in (Pruning.after_interrupt)."""
        p = self.pruning
        return (
            p.after_interrupt
            and p.interrupts
            and p.read_pauses
            and ready
            and rule.arg(PAUSE) is not None
            and rule.arg("irq") is not None
            and node.cost.interrupts < self.bound.interrupts
        )

    def _reads_pauses(self, node: Node, rule: Rule) -> bool:
        """Whether the pauses of a call at node are tried (read on its way)."""
        return (
            self.pruning.read_pauses
            and rule.arg(PAUSE) is not None
            and (node.cost.preemptions < self.bound.preemptions or not self.pruning.interrupts)
        )

    def _schedules(
        self,
        node: Node,
        rule: Rule,
        fixed: dict[str, Any],
        first: tuple[Outcome, list[int]] | None,
        ready: bool,
    ) -> None:
        """The call with its pick and flag arguments fixed, at every pause and interrupt point."""
        has_pause = rule.arg(PAUSE) is not None
        has_irq = rule.arg("irq") is not None
        interrupting = rule.name == "softirq"

        reads = self._reads_pauses(node, rule)
        keys = self._keys_interrupts(node, rule, ready)

        def call(
            irq: int,
            pause: int,
            points: bool = False,
            read: Outcome | None = None,
            wanted: Container[int] | None = None,
            known: Outcome | None = None,
        ) -> tuple[dict[str, Any], Outcome]:
            """The call; not run where its outcome is `known`, or read on
            the way through `read`."""
            args = dict(fixed)
            if has_pause:
                args[PAUSE] = pause
            if has_irq:
                args["irq"] = irq
            shorter = read.shorter if read is not None else None
            if known is None and shorter and pause in shorter:
                known = shorter[pause]
            if known is not None:
                self.result.executed += 1
                if known.reused:
                    self.result.reused += 1
                else:
                    self.result.read += 1
                return args, known
            return args, self._trial(node, rule, args, points, wanted, points and keys)

        if first is None:
            seen: list[int] = []
            args, base = call(0, Budget(seen), True, None, EVERY_PAUSE if reads else None)
        else:
            base, seen = first
            args = _plain(fixed, has_pause, has_irq)
        self._emit(node, rule, args, base, interrupting)
        if base.fatal is not None:
            return  # every other schedule runs the same steps up to the violation, or fewer
        b, p = self.bound, self.pruning
        pauses: dict[int, bytes] = {0: base.digest}
        may_preempt = has_pause and node.cost.preemptions < b.preemptions
        may_interrupt = (
            has_irq and node.cost.interrupts < b.interrupts and (ready or not p.interrupts)
        )
        # The steps the call runs: counted by the scheduler against the
        # pause (Budget), or else found where a pause stops being one.
        length = 0
        counted = max(seen) if seen and p.pauses else None
        if counted is not None and (may_preempt or may_interrupt):
            # Pauses after each step but the last (which ends it), or after
            # every step when it then spins.
            length = counted if base.spun else counted - 1
            for k in range(1, length + 1) if may_preempt or not p.interrupts else ():
                args, out = call(0, k, read=base)
                self._measure(k, out)
                if not p.interrupts:
                    pauses[k] = out.digest
                if may_preempt:
                    self._emit(node, rule, args, out, interrupting)
        elif has_pause and (may_preempt or may_interrupt):
            for k in range(1, p.full_range):
                args, out = call(0, k, read=base)
                if p.pauses and not out.paused:
                    break
                length = k
                pauses[k] = out.digest
                self._measure(k, out)
                if may_preempt:
                    self._emit(node, rule, args, out, interrupting)
        if not may_interrupt:
            return
        top = length + 2 if p.interrupts else p.full_range
        points = base.interrupt_points
        for j in range(1, top):
            if p.interrupts and points and not points[min(j, len(points)) - 1]:
                continue  # it would not fire (read on the call without it)
            # The call runs with a pause that never falls, and reads on its
            # way the states of the pauses tried after the interrupt: at it
            # (where the softirq has run), and after it where one is left.
            point = None
            if base.interrupt_keys and points:
                point = base.interrupt_keys.get(min(j, len(points)))
            known = None
            if point is not None:
                known = self.after_interrupts.get((point.key, may_preempt))
                if known is not None and not known.fits(point.start):
                    known = None
            if known is not None:
                args, full = call(j, Budget([]), known=known.at(j, point.reports))
            elif p.read_pauses and has_pause:
                args, full = call(j, Budget([]), wanted=EVERY_PAUSE if may_preempt else (j,))
            else:
                args, full = call(j, 0)
            fired = full.digest != base.digest
            if point is not None and known is None:
                self.after_interrupts.setdefault(
                    (point.key, may_preempt), AfterInterrupt.of(full, j, point, self._once)
                )
            if p.interrupts and not fired and full.fatal is None:
                continue  # it did not fire: no callback ready there, or bh disabled
            self._emit(node, rule, args, full, fired)
            if not has_pause or (full.fatal is not None and p.interrupts):
                continue
            # With no preemption left, the pause at the interrupt is still
            # free: the call stops once the softirq has ended or spun.
            lowest = j if p.interrupts or not may_preempt else 1
            for k in range(lowest, p.full_range if may_preempt else j + 1):
                args, out = call(j, k, read=full)
                # At k = j the call stops once the softirq has run to its end
                # or spun: pauses inside it come after, whether or not it spun.
                if p.pauses and k != j and not out.paused:
                    break
                self._measure(k, out)
                # A pause before the interrupt point is the call without it.
                fired = k >= j if p.interrupts else out.digest != pauses.get(k)
                self._emit(node, rule, args, out, fired)

    def _measure(self, pause: int, out: Outcome) -> None:
        """The longest operation seen, in steps: the searches that try every
        pause below Pruning.full_range must reach past it."""
        if out.paused:
            self.longest_op = max(self.longest_op, pause + 1)

    def _emit(
        self, node: Node, rule: Rule, args: dict[str, Any], out: Outcome, interrupted: bool
    ) -> None:
        """Count one rule call from node, and queue the state it leads to."""
        c = node.cost
        operation = rule.operation
        setup = (
            operation
            and c.in_setup
            and c.setup < self.bound.setup
            and not out.preempted
            and not interrupted
            # Run atomically to its end, or to the violation that ends the run.
            and (out.quiescent or out.fatal is not None)
        )
        cost = Cost(
            setup=c.setup + setup,
            concurrent=c.concurrent + (operation and not setup),
            preemptions=c.preemptions + out.preempted,
            interrupts=c.interrupts + (interrupted or rule.name == "softirq"),
            calls=c.calls + 1,
        )
        if not cost.within(self.bound):
            return
        cost = self._once(cost)
        step = self._once(Step.of(rule.name, {k: _plain_value(v) for k, v in args.items()}))
        path = (*node.path, step)
        scenario = node.scenario
        if operation:
            scenario = self._once(
                (*scenario, (rule.name, *sorted((k, v) for k, v in step.args if _object(k))))
            )
        self.scenarios.add(scenario)
        if out.fatal is not None:
            node.ends += 1
            self._found(out.fatal, path, cost, in_drain=False)
            return
        for warning in out.warnings:
            self._found(warning, path, cost, in_drain=False)
        if out.digest == node.digest:
            node.ends += 1
            return  # the call changed nothing: the node stands for it
        self._push(node, Node(path, cost, out.digest, scenario))
        self._drain_once(out.machine, out.digest, path, cost)

    def _drain_once(
        self, machine: Any | None, digest: bytes, path: tuple[Step, ...], cost: Cost
    ) -> None:
        """Drain the state once; machine None: a state read on the way through
        a longer call (Pruning.read_pauses), replayed here."""
        if digest not in self.drained or not self.pruning.cache:
            if machine is None:
                machine = self._replayed(digest, path)
            seen = len(machine.world.reports)
            found: list[Violation] = []
            try:
                machine.teardown()
            except Violation as violation:
                found.append(violation)
            found = list(machine.world.reports[seen:]) + found
            self.drained[digest] = tuple(found)
        for violation in self.drained[digest]:
            self._found(violation, path, cost, in_drain=True)

    def _replayed(self, digest: bytes, path: tuple[Step, ...]) -> Any:
        """A machine replayed through path, which must reach the state read
        for it on the way through a longer call."""
        machine = self._replay(path)
        if trial.state_of(machine, self.pruning.symmetry) != digest:
            raise RuntimeError(
                f"{self.design_cls.name}: {path[-1]} replayed does not reach the state read "
                "on the way through the same call without its pause: after_run or the "
                "design's invariants changed something trial._Undo does not put back"
            )
        return machine

    def _found(
        self, violation: Violation, path: tuple[Step, ...], cost: Cost, in_drain: bool
    ) -> None:
        prop = violation.property
        first = str(violation).splitlines()[0]
        self.violations.add((prop, _where(first)))
        order = (*cost.order, int(in_drain))
        held = self.best.get(prop)
        if held is not None and held <= order:
            return
        self.best[prop] = order
        old = self.result.found.get(prop)
        self.result.found[prop] = Counterexample(
            property=prop,
            steps=path,
            cost=cost,
            message=first,
            in_drain=in_drain,
            seconds=old.seconds if old else time.perf_counter() - self._start,
            interleavings=old.interleavings if old else self.result.executed,
        )

    def _report_progress(self) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if now - self._last_progress < self.progress_every:
            return
        self._last_progress = now
        order = self.frontier[0][0] if self.frontier else ()
        self.progress(
            f"{self.design_cls.name}: exhaustive at {_cost_words(order)}: "
            f"{self.result.executed:,} run, "
            f"{len(self.frontier):,} queued, {len(self.states):,} states, "
            f"{now - self._start:.0f} s; found: {', '.join(sorted(self.result.found)) or 'none'}"
        )


def explore(
    design_cls: type[Design],
    bound: Bound,
    pruning: Pruning = ALL,
    stop_after: frozenset[str] | None = None,
    progress: Callable[[str], None] | None = None,
    progress_every: float = 30.0,
    operations: frozenset[str] | None = None,
    setup: tuple[Step, ...] = (),
) -> Explorer:
    explorer = Explorer(
        design_cls, bound, pruning, stop_after, progress, progress_every, operations, setup
    )
    explorer.run()
    return explorer


@define
class AfterInterrupt:
    """What a call did from the point its interrupt fired: its outcome, and
    that of each pause it read from there, counted from the point.

    Another call whose interrupt fires in the same state, on the same
    context, runs the same steps from there: the run is deterministic. Its
    outcomes are these, but for what it had reported before the point: its
    own (`at`). And for one thing the state does not hold: where the
    interrupted context was when the call began. A stop with the context
    back there reads as "not run by the call" (trial._left), so the outcomes
    are taken only where no stop has it back at either call's start (`fits`).
    """

    full: Outcome
    after: dict[int, Outcome]  # by pause, counted from the interrupt point
    stops: frozenset[tuple[Any, ...]]  # where the outcomes left the interrupted context on top
    usable: bool  # no stop had it back where this call began

    @classmethod
    def of(
        cls,
        full: Outcome,
        j: int,
        point: InterruptPoint,
        once: Callable[[frozenset[tuple[Any, ...]]], frozenset[tuple[Any, ...]]] | None = None,
    ) -> AfterInterrupt:
        """What `full`, whose interrupt fired at j, did from there; with
        `once`, its set of stops is the equal one `once` keeps, if any."""
        after = {k - j: out for k, out in (full.shorter or {}).items() if k >= j}
        interrupted = (point.key.cpu, point.key.kind)
        stops = frozenset(
            where
            for out in (full, *after.values())
            for cpu, kind, where in out.tops
            if (cpu, kind) == interrupted
        )
        if once is not None:
            stops = once(stops)
        reported = len(point.reports)  # those before the point are each call's own
        return cls(
            _kept(full, reported),
            {k: _kept(out, reported) for k, out in after.items()},
            stops,
            point.start not in stops,
        )

    def fits(self, start: tuple[Any, ...] | None) -> bool:
        """Whether a call whose interrupted context began at `start` may take these."""
        return self.usable and start not in self.stops

    def at(self, j: int, reports: list[Violation]) -> Outcome:
        """The same call's outcomes with its interrupt at j, after `reports`."""
        full = _taken(self.full, reports)
        full.shorter = {j + k: _taken(out, reports) for k, out in self.after.items()}
        return full


def _taken(out: Outcome, reports: list[Violation]) -> Outcome:
    """A kept outcome as a later call takes it, after its own `reports`."""
    return attrs.evolve(out, warnings=[*reports, *out.warnings], shorter=None, reused=True)


def _kept(out: Outcome, reported: int) -> Outcome:
    """The outcome as kept for later calls: without its machine (it is never
    run on), its warnings from the interrupt point on (those before are each
    call's own), and without where it left the CPUs' top contexts (read once,
    into `AfterInterrupt.stops`; half the memory kept, measured)."""
    return attrs.evolve(
        out,
        machine=None,
        warnings=out.warnings[reported:],
        shorter=None,
        interrupt_keys=None,
        tops=(),
    )


# --- helpers ----------------------------------------------------------------


def _plain(fixed: dict[str, Any], has_pause: bool, has_irq: bool) -> dict[str, Any]:
    args = dict(fixed)
    if has_pause:
        args[PAUSE] = 0
    if has_irq:
        args["irq"] = 0
    return args


def _cost_words(order: tuple[int, ...]) -> str:
    """A cost order (Cost.order) as words: how far a search by cost has come."""
    if not order:
        return "its end"
    names = ("operation", "preemption", "interrupt", "rule call")
    return ", ".join(
        f"{n} {name}{'' if n == 1 else 's'}" for n, name in zip(order, names, strict=True)
    )


def _types(value: Any) -> Any:
    """The types of what value holds: a step with True and one with 1 are
    equal, but not the same step."""
    if isinstance(value, Step):
        return _types(value.args)
    if isinstance(value, tuple):
        return tuple(_types(v) for v in value)
    return type(value)


def _plain_value(v: Any) -> Any:
    if isinstance(v, Budget):
        return 0  # it never fell: the call is the one without a pause
    return v if isinstance(v, bool) else int(v)


def _object(arg: str) -> bool:
    return arg not in (PAUSE, "irq")


def _where(first_line: str) -> str:
    """Where a violation happened, up to the first context it names: states
    the cache takes as one may word who did it differently."""
    return re.split(r"\bCPU\d+/", text(first_line))[0]
