"""The machine's rule language, as pgfrag's own searches read it.

The exhaustive search (stateful/exhaustive/) enumerates the KernelMachine's
own rule calls, and the random scheduler (stateful/scheduler.py) draws them,
so that every counterexample is a replay file like the others. Both read the
rules from the class (whatever rules and arguments the machine has today),
and each argument is sorted into one of four kinds by the machine's
documented protocol (stateful/machine.py):

  pause    run the context for that many steps of its CPU, then switch away
           (0: to its end, or until it spins);
  irq      an interrupt after that many steps of the context, which runs the
           ready RCU callbacks where bh is enabled (0: none);
  flag     a boolean (an injected failure, a PGSTE mm): both values;
  pick     a small integer "taken modulo what exists": which CPU, mm, table,
           context. Its values are read from the rule's strategy; the
           exhaustive search narrows them (stateful/exhaustive/rules.py).

Every rule is an operation except the scheduling rules, which start none.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from attrs import define, field
from hypothesis.stateful import RULE_MARKER

PAUSE = "pause"
IRQ = "irq"
# Rules that start no operation: they schedule what is there.
SCHEDULING = frozenset({"resume", "softirq", "grace_period", "idle"})
# `idle` only keeps an ended example going; the search never ends one early.
NEVER = frozenset({"idle"})


class RuleError(Exception):
    """A rule argument whose values the search cannot enumerate."""


@define(frozen=True)
class Arg:
    name: str
    kind: str  # "pause", "irq", "flag" or "pick"
    # The strategy's values in order, with its repeats, which are its
    # weights: what the random scheduler (stateful/scheduler.py) draws from
    # uniformly.
    drawn: tuple[Any, ...]

    @property
    def values(self) -> tuple[Any, ...]:
        """The strategy's values, distinct, in order: what the exhaustive search tries."""
        return tuple(dict.fromkeys(self.drawn))


@define(frozen=True)
class Rule:
    name: str
    args: tuple[Arg, ...]
    operation: bool
    preconditions: tuple[Callable[[Any], bool], ...] = field(eq=False)

    def enabled(self, machine: Any) -> bool:
        return all(pre(machine) for pre in self.preconditions)

    def arg(self, name: str) -> Arg | None:
        return next((a for a in self.args if a.name == name), None)


def _lazy_values(strategy: Any) -> tuple[Any, ...] | None:
    """The values of `booleans()` or `integers(a, b)` read from how it was
    called, without building it (Hypothesis warns when a plugin builds one)."""
    function = getattr(strategy, "function", None)
    args = getattr(strategy, "_LazyStrategy__args", None)
    kwargs = getattr(strategy, "_LazyStrategy__kwargs", None)
    if function is None or args is None or kwargs is None:
        return None
    bound = inspect.signature(function).bind(*args, **kwargs).arguments
    if function.__name__ == "booleans":
        return (False, True)
    low, high = bound.get("min_value"), bound.get("max_value")
    if function.__name__ == "integers" and isinstance(low, int) and isinstance(high, int):
        return tuple(range(low, high + 1))
    return None


def _drawn(strategy: Any, where: str) -> tuple[Any, ...]:
    """The values a rule argument's strategy draws from, in order; a
    sampled_from keeps its repeats, which are its weights."""
    lazy = _lazy_values(strategy)
    if lazy is not None:
        return lazy
    inner = getattr(strategy, "wrapped_strategy", strategy)
    kind = type(inner).__name__
    if kind == "BooleansStrategy":
        return (False, True)
    elements = getattr(inner, "elements", None)
    if elements is not None:
        return tuple(elements)
    start, end = getattr(inner, "start", None), getattr(inner, "end", None)
    if isinstance(start, int) and isinstance(end, int):
        return tuple(range(start, end + 1))
    raise RuleError(f"{where}: cannot enumerate the values of {strategy!r}")


def _kind(name: str, values: tuple[Any, ...]) -> str:
    if name == PAUSE:
        return "pause"
    if name == IRQ:
        return "irq"
    if all(isinstance(v, bool) for v in values):
        return "flag"
    if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        return "pick"
    distinct = tuple(dict.fromkeys(values))
    raise RuleError(f"argument {name}: values {distinct!r} are neither a flag nor a pick")


def rules_of(machine_cls: type) -> tuple[Rule, ...]:
    """The machine's rules in the order its class defines them."""
    seen: dict[str, Rule] = {}
    for klass in reversed(machine_cls.__mro__):
        for name, fn in vars(klass).items():
            spec = getattr(fn, RULE_MARKER, None)
            if spec is None or name in NEVER:
                continue
            args = tuple(
                Arg(arg, _kind(arg, drawn), drawn)
                for arg, strategy in sorted(spec.arguments.items())
                for drawn in [_drawn(strategy, f"{name}({arg})")]
            )
            seen[name] = Rule(name, args, name not in SCHEDULING, tuple(spec.preconditions))
    return tuple(seen.values())
