"""How the exhaustive search narrows a rule's arguments without losing a call.

`Pick` records the modulus a pick is taken by, so only 0 .. n-1 are tried
for n candidates; `Budget` is a pause that never falls and counts the
steps an operation runs, so the pauses inside it are known (and, read on
the way, the state each of them stops in: stateful/exhaustive/trial.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stateful.rules import Arg


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
    # The steps counted before this budget was handed on: a pause of
    # `offset + taken` would stop where this budget has taken `taken`.
    offset: int

    def __new__(cls, seen: list[int], offset: int = 0) -> Budget:
        obj = super().__new__(cls, cls.NEVER)
        obj.seen, obj.offset = seen, offset
        return obj

    def __sub__(self, other: Any) -> Any:
        """What is left of the pause once `other` of its steps are taken: a
        budget that still never falls, counting on from there."""
        if isinstance(other, int) and not isinstance(other, bool | Budget):
            return Budget(self.seen, self.offset + other)
        return int.__sub__(self, other)

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
