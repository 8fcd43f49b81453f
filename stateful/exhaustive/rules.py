"""The machine's rule language, as the exhaustive search reads it.

The search enumerates the KernelMachine's own rule calls, so that every
counterexample is a replay file like the others. It reads the rules from
the class (whatever rules and arguments the machine has today) and sorts
each argument into one of four kinds by the machine's documented protocol
(stateful/machine.py):

  pause    run the context for that many steps of its CPU, then switch away
           (0: to its end, or until it spins);
  irq      an interrupt after that many steps of the context, which runs the
           ready RCU callbacks where bh is enabled (0: none);
  flag     a boolean (an injected failure, a PGSTE mm): both values;
  pick     a small integer "taken modulo what exists": which CPU, mm, table,
           context. Its values are read from the rule's strategy; the search
           narrows them with `Pick`, which records the modulus the rule
           takes it by, so only 0 .. n-1 are tried for n candidates.

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
    values: tuple[Any, ...]  # the strategy's values, distinct, in order


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


def _values(strategy: Any, where: str) -> tuple[Any, ...]:
    lazy = _lazy_values(strategy)
    if lazy is not None:
        return lazy
    inner = getattr(strategy, "wrapped_strategy", strategy)
    kind = type(inner).__name__
    if kind == "BooleansStrategy":
        return (False, True)
    elements = getattr(inner, "elements", None)
    if elements is not None:
        return tuple(dict.fromkeys(elements))
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
    raise RuleError(f"argument {name}: values {values!r} are neither a flag nor a pick")


def rules_of(machine_cls: type) -> tuple[Rule, ...]:
    """The machine's rules in the order its class defines them."""
    seen: dict[str, Rule] = {}
    for klass in reversed(machine_cls.__mro__):
        for name, fn in vars(klass).items():
            spec = getattr(fn, RULE_MARKER, None)
            if spec is None or name in NEVER:
                continue
            args = tuple(
                Arg(arg, _kind(arg, vals), vals)
                for arg, strategy in sorted(spec.arguments.items())
                for vals in [_values(strategy, f"{name}({arg})")]
            )
            seen[name] = Rule(name, args, name not in SCHEDULING, tuple(spec.preconditions))
    return tuple(seen.values())


class Pick(int):
    """A pick argument that records every modulus the rule takes it by.

    The machine takes a pick modulo the number of candidates (`items[i %
    len(items)]`, `cpus[(i + j) % n]`): values congruent modulo all the
    moduli recorded are the same call. A use the record cannot account for
    (the value read as an index, compared, printed) marks it `raw`: then
    every value of the strategy is tried.
    """

    moduli: set[int]
    raw: list[bool]

    def __new__(cls, value: int, moduli: set[int], raw: list[bool]) -> Pick:
        obj = super().__new__(cls, value)
        obj.moduli, obj.raw = moduli, raw
        return obj

    def __mod__(self, n: Any) -> int:
        self.moduli.add(int(n))
        return int(self) % n

    def __add__(self, other: Any) -> Any:
        if isinstance(other, int) and not isinstance(other, bool):
            return Pick(int(self) + other, self.moduli, self.raw)
        return self._raw(int.__add__, other)

    __radd__ = __add__

    def _raw(self, op: Callable[..., Any], *args: Any) -> Any:
        self.raw[0] = True
        return op(int(self), *args)

    def __index__(self) -> int:
        self.raw[0] = True
        return int(self)

    def __bool__(self) -> bool:
        self.raw[0] = True
        return int(self) != 0

    def __eq__(self, other: object) -> bool:
        return bool(self._raw(int.__eq__, other))

    def __lt__(self, other: Any) -> bool:
        return bool(self._raw(int.__lt__, other))

    def __le__(self, other: Any) -> bool:
        return bool(self._raw(int.__le__, other))

    def __gt__(self, other: Any) -> bool:
        return bool(self._raw(int.__gt__, other))

    def __ge__(self, other: Any) -> bool:
        return bool(self._raw(int.__ge__, other))

    def __sub__(self, other: Any) -> Any:
        return self._raw(int.__sub__, other)

    def __mul__(self, other: Any) -> Any:
        return self._raw(int.__mul__, other)

    def __floordiv__(self, other: Any) -> Any:
        return self._raw(int.__floordiv__, other)

    def __hash__(self) -> int:
        return int.__hash__(self)


def pick_domain(arg: Arg, moduli: set[int], raw: bool) -> tuple[int, ...]:
    """The values of a pick that can differ, given what one call recorded."""
    if raw or not moduli:
        # Read some other way, or not through `%` at all (a list index reads
        # an int subclass without asking it): every value may differ.
        return arg.values
    period = 1
    for n in moduli:
        period = period * n // _gcd(period, n)
    return tuple(v for v in arg.values if v < period)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


class Budget(int):
    """A pause that never falls: the operation runs to its end, or to a spin,
    as with no pause. The scheduler counts the steps it takes against it
    (`taken >= budget`), and the counts it compares are recorded: the last one
    is the number of steps the operation ran, so the pauses that fall inside
    it are known without trying one past its end."""

    NEVER = 1 << 30
    seen: list[int]

    def __new__(cls, seen: list[int]) -> Budget:
        obj = super().__new__(cls, cls.NEVER)
        obj.seen = seen
        return obj

    def _saw(self, other: Any) -> None:
        if isinstance(other, int) and not isinstance(other, bool | Budget):
            self.seen.append(int(other))

    def __le__(self, other: Any) -> bool:
        self._saw(other)
        return int(self) <= other

    def __ge__(self, other: Any) -> bool:
        self._saw(other)
        return int(self) >= other

    def __lt__(self, other: Any) -> bool:
        self._saw(other)
        return int(self) < other

    def __gt__(self, other: Any) -> bool:
        self._saw(other)
        return int(self) > other

    def __hash__(self) -> int:
        return int.__hash__(self)
