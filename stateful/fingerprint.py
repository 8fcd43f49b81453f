"""A canonical fingerprint of the machine between two rule calls.

Two runs that reach the same fingerprint behave the same from there on:
the exhaustive search explores one of them and counts the other as covered.
So the fingerprint must hold everything that can change what happens next,
and nothing that only records the past.

What it holds: the state machine's own fields and everything reachable from
them (the World: pages with their bytes, flags and lists, locks, RCU queues
and grace-period state, mms, lockdep's usage table and which reports were
made; the page-table bookkeeping of ops.PageTables), including the contexts
in flight. A context in flight is a generator: its state is its code, the
instruction it is suspended at (`f_lasti`), its locals, and its value stack,
which `gc.get_referents` exposes (the iterator of a `for` loop, the
generator a `yield from` delegates to). An RCU callback is a bound method
or a closure: its function's name, and what it is bound to or closes over.

What it leaves out: the trace, the step counters and statistics (which
only word messages and measures), the machine's record of its own rule
calls, and Hypothesis's bookkeeping. Objects are named by the order in
which the walk first meets them, not by their address, so the same state
reached by two runs has the same fingerprint; numbers that are addresses
(`id(page)` keys) are replaced by the name of the object they are the
address of. Two numbers are renamed by rank rather than kept: RCU's
read-side section numbers, which only ever grow and are only compared for
equality; and "step N" in a message, which is the step counter. Text that
only words a report (who freed an object, where lockdep first saw a lock
class used) counts as set or not; a report made counts as its property.

CPU numbers are read as they are: stateful/symmetry.py numbers the CPUs
canonically before the walk, so a state and its mirror read alike. For
that the number must be the CPU's own field (and its RCU queue's key)
alone: a text the state holds that names a CPU by number ("CPU1/task")
stops the walk with StateError.

A value the walk does not know how to read stops the search with
StateError: a fingerprint that silently dropped it would be unsound.
"""

from __future__ import annotations

import enum
import gc
import hashlib
import marshal
import re
import types
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import attrs

# Fields that record the past or measure the run, by class name and field.
EXCLUDED: frozenset[tuple[str, str]] = frozenset(
    {
        ("World", "trace"),
        ("World", "steps"),
        ("World", "contention"),
        ("World", "acquisitions"),
        ("World", "current"),  # None between rule calls
        ("World", "step_probe"),  # None between rule calls
        ("World", "pause_probe"),  # None between rule calls
        ("Context", "left_runnable"),  # read within one rule call only
        ("Context", "left_at_interrupt"),  # read within one rule call only
        ("Rcu", "sections"),  # the counter behind the section numbers, renamed below
    }
)
# Fields that only word a report (who freed it, where a lock was first
# taken with softirqs on): what they say does not change what happens, only
# whether they are set can.
WORDING = frozenset({"freed_where", "freed_by", "reused_by", "in_softirq", "softirq_on"})
WORDING_CLASSES = frozenset({"LockUsage", "Page", "MMStruct", "KObject", "SlabObject"})
# The RCU fields that hold section numbers, renamed by rank: a new section
# always gets a number above every existing one, and the numbers are only
# compared for equality, so the rank says all the numbers say.
RCU_SECTION_FIELDS = ("readers", "implicit", "waiting_on")

_STEP = re.compile(r"\bstep \d+")
_CPU = re.compile(r"\bCPU\d")
# No small integer in the model is an address; every address is above this.
_ADDRESS = 1 << 32

_ATOMS = (type(None), bool, float, bytes)


class StateError(Exception):
    """The state holds something the fingerprint cannot read soundly."""


_TEXTS: dict[str, str] = {}
_STATE_TEXTS: dict[str, str] = {}


def text(s: str) -> str:
    """A message as the fingerprint reads it: the step counter left out."""
    return _text(s)


def _state_text(s: str) -> str:
    """A text the state holds, as the fingerprint reads it."""
    out = _STATE_TEXTS.get(s)
    if out is None:
        if _CPU.search(s):
            raise StateError(
                f"the state holds the text {s!r}, which names a CPU by its number. A "
                "CPU's number is a name (stateful/symmetry.py): word it when it is "
                "shown, keep it out of what the state holds."
            )
        out = _STATE_TEXTS[s] = _text(s)
        if len(_STATE_TEXTS) > 200_000:
            _STATE_TEXTS.clear()
    return out


def _text(s: str) -> str:
    out = _TEXTS.get(s)
    if out is None:
        out = _TEXTS[s] = _STEP.sub("step #", s)
        if len(_TEXTS) > 200_000:
            _TEXTS.clear()
    return out


def _iterator_types() -> tuple[type, ...]:
    return tuple(
        type(it)
        for it in (
            iter([]),
            iter(()),
            iter(range(0)),
            iter({}),
            iter({}.values()),
            iter({}.items()),
            iter(""),
            reversed([]),
        )
    )


_ITERATORS = _iterator_types()
_FROZEN = attrs.make_class("_Frozen", [], frozen=True).__setattr__
# The structure marks of the flat encoding; data is never a tuple, so no
# value can be mistaken for one.
END = ("end",)
REF = "ref"


def _is_value(cls: type) -> bool:
    """A frozen attrs class compared by value: which instance it is does not matter."""
    return cls.__setattr__ is _FROZEN and cls.__eq__ is not object.__eq__


# The kinds of object met once and then referred to by name; each is read
# by the _Walk method named after it.
_NAMED = frozenset(
    {"attrs", "worded", "counter", "dict", "list", "set", "cell", "iterator", "exception"}
    | {"object", "rcu", "generator", "function"}
)
# Per type: how it is read ("kind"), for attrs classes the fields read, and
# for a named kind the _Walk method that reads it.
_KINDS: dict[type, tuple[str, tuple[str, ...], Callable[..., None] | None]] = {}


def _kind(cls: type) -> tuple[str, tuple[str, ...], Callable[..., None] | None]:
    known = _KINDS.get(cls)
    if known is not None:
        return known
    fields: tuple[str, ...] = ()
    if issubclass(cls, _ATOMS):
        kind = "atom"
    elif issubclass(cls, enum.Enum):
        kind = "enum"
    elif issubclass(cls, int):
        kind = "int"
    elif issubclass(cls, str):
        kind = "str"
    elif attrs.has(cls):
        name = cls.__qualname__
        fields = tuple(f.name for f in attrs.fields(cls) if (name, f.name) not in EXCLUDED)
        kind = "rcu" if name == "Rcu" else "value" if _is_value(cls) else "attrs"
        if kind == "attrs" and any(c.__qualname__ in WORDING_CLASSES for c in cls.__mro__):
            kind = "worded"
    elif issubclass(cls, tuple):
        kind = "tuple"
    elif issubclass(cls, type):
        kind = "type"
    elif issubclass(cls, types.MethodType):
        kind = "method"
    elif issubclass(cls, types.BuiltinFunctionType | types.ModuleType | types.CodeType):
        kind = "builtin"
    elif issubclass(cls, Counter):
        kind = "counter"
    elif issubclass(cls, dict):
        kind = "dict"
    elif issubclass(cls, list):
        kind = "list"
    elif issubclass(cls, set | frozenset):
        kind = "set"
    elif issubclass(cls, types.GeneratorType):
        kind = "generator"
    elif issubclass(cls, types.FunctionType):
        kind = "function"
    elif issubclass(cls, types.CellType):
        kind = "cell"
    elif issubclass(cls, _ITERATORS):
        kind = "iterator"
    elif issubclass(cls, BaseException):
        kind = "exception"
    else:
        kind = "object"
    reader = getattr(_Walk, "_" + kind) if kind in _NAMED else None
    _KINDS[cls] = (kind, fields, reader)
    return _KINDS[cls]


_SLOT_NAMES: dict[types.CodeType, tuple[str, ...]] = {}


def _slot_names(code: types.CodeType) -> tuple[str, ...]:
    """A frame's local names in the order of its slots: locals (arguments
    first), then cells that are not arguments, then free variables."""
    names = _SLOT_NAMES.get(code)
    if names is None:
        cells = tuple(c for c in code.co_cellvars if c not in code.co_varnames)
        names = _SLOT_NAMES[code] = code.co_varnames + cells + code.co_freevars
    return names


class _Walk:
    """Writes the canonical form as a flat list: marks, names and values."""

    def __init__(self, root: Any, skip_root: frozenset[str]) -> None:
        self.root = root
        self.skip_root = skip_root
        self.names: dict[int, int] = {}  # id(obj) -> its name, in order of first meeting
        self.alive: list[Any] = []  # what was named stays alive, so no id is reused
        self.deferred: list[tuple[int, Any]] = []
        self.out: list[Any] = []

    def _address(self, value: int) -> None:
        name = self.names.get(value)
        if name is None:
            raise StateError(
                f"the number {value:#x} looks like an address (id() of an object), but no "
                "object met so far has it: a dict keyed by id() whose object is not "
                "reachable, or a key met before its object. Teach "
                "stateful/fingerprint.py where it comes from."
            )
        self.out.append(("@", name))

    def value(self, x: Any) -> None:
        out = self.out
        cls = type(x)
        kind, fields, reader = _KINDS.get(cls) or _kind(cls)
        if reader is not None:
            # Tested first: named objects are half of what a state holds.
            key = id(x)
            name = self.names.get(key)
            if name is not None:
                out.append((REF, name))
                return
            name = self.names[key] = len(self.names)
            self.alive.append(x)
            out.append((kind, name, cls.__qualname__))
            reader(self, x, fields, name)
            out.append(END)
            return
        if kind == "atom":
            out.append(x)
            return
        if kind == "int":
            v = int(x)
            if -_ADDRESS < v < _ADDRESS:
                out.append(v)
            else:
                self._address(v)
            return
        if kind == "str":
            out.append(_state_text(x))
            return
        if kind == "enum":
            out.append(("enum", cls.__qualname__, x.name))
            return
        if kind == "tuple":
            out.append(("tuple",))
            for v in x:
                self.value(v)
            out.append(END)
            return
        if kind == "value":
            out.append(("value", cls.__qualname__))
            for f in fields:
                self.value(getattr(x, f))
            out.append(END)
            return
        if kind == "method":
            # A bound method is made afresh at every attribute access: it is
            # its function and what it is bound to, not an identity.
            out.append(("method", x.__func__.__qualname__))
            self.value(x.__self__)
            return
        if kind == "type":
            out.append(("type", x.__module__, x.__qualname__))
            return
        if kind == "builtin":
            name = getattr(x, "__qualname__", None) or getattr(x, "__name__", repr(x))
            out.append(("builtin", cls.__name__, name))
            return
        raise AssertionError(f"kind {kind!r} of {cls.__qualname__} has no reader")

    # --- what a named object holds ----------------------------------------

    def _attrs(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        for f in fields:
            self.value(getattr(x, f))

    def _worded(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        for f in fields:
            v = getattr(x, f)
            self.value(bool(v) if f in WORDING else v)

    def _counter(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        # A Counter reads 0 for a key it lacks: a key counted back to 0 is the same.
        self._items((k, v) for k, v in x.items() if v)

    def _dict(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        self._items(x.items())

    def _items(self, items: Iterable[tuple[Any, Any]]) -> None:
        # The value first: a key that is the address of its value (id(page))
        # then finds the value's name.
        for key, val in items:
            self.value(val)
            self.value(key)

    def _list(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        for v in x:
            self.value(v)

    def _set(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        # Set order is hash order, which depends on addresses: read the
        # members last, sorted, once everything else has its name.
        self.deferred.append((name, x))

    def _cell(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        try:
            contents = x.cell_contents
        except ValueError:
            self.out.append(("empty cell",))
            return
        self.value(contents)

    def _iterator(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        for v in x.__reduce__()[1:]:
            self.value(v)

    def _exception(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        """A report: which property it is, not its wording."""

    def _object(self, x: Any, fields: tuple[str, ...], name: int) -> None:
        if not hasattr(x, "__dict__"):
            raise StateError(
                f"cannot fingerprint a {type(x).__module__}.{type(x).__qualname__}: "
                "teach stateful/fingerprint.py how it behaves"
            )
        skip = self.skip_root if x is self.root else frozenset()
        for k, v in vars(x).items():
            if k not in skip:
                self.out.append(k)
                self.value(v)

    def _rcu(self, rcu: Any, fields: tuple[str, ...], name: int) -> None:
        missing = [f for f in RCU_SECTION_FIELDS if f not in fields]
        if missing:
            raise StateError(f"Rcu has no field {missing}: update stateful/fingerprint.py")
        numbers = sorted(
            {*rcu.readers.values(), *rcu.implicit.values(), *(s for _, s in rcu.waiting_on)}
        )
        rank = {n: i for i, n in enumerate(numbers)}
        for f in fields:
            value = getattr(rcu, f)
            if f in ("readers", "implicit"):
                value = {ctx: ("section", rank[s]) for ctx, s in value.items()}
            elif f == "waiting_on":
                value = {(ctx, ("section", rank[s])) for ctx, s in value}
            self.value(value)

    def _generator(self, gen: Any, fields: tuple[str, ...], name: int) -> None:
        code = gen.gi_code
        frame = gen.gi_frame
        out = self.out
        out.append(code.co_qualname)
        if frame is None:
            out.append("finished")
            return
        out.append(frame.f_lasti)
        # Which locals are bound (a slot of an unbound one is skipped below),
        # in the frame's slot order: f_locals is a dict the frame keeps, whose
        # order is that of the first read of each name, not of the slots.
        bound = frame.f_locals
        out.append(("bound", *(n for n in _slot_names(code) if n in bound)))
        refs = gc.get_referents(gen)
        # The referents are the code and names, the frame's own bookkeeping,
        # then its function and code, then every live local slot and the value
        # stack: what follows that function-and-code pair is the state.
        for i in range(len(refs) - 1):
            fn = refs[i]
            if refs[i + 1] is code and isinstance(fn, types.FunctionType) and fn.__code__ is code:
                for v in refs[i + 2 :]:
                    self.value(v)
                return
        raise StateError(f"cannot read the frame of generator {code.co_qualname}")

    def _function(self, fn: Any, fields: tuple[str, ...], name: int) -> None:
        self.out.append(fn.__qualname__)
        for cell in fn.__closure__ or ():
            self.value(cell)
        self.value(fn.__defaults__)

    def finish(self) -> list[Any]:
        while self.deferred:
            name, members = self.deferred.pop(0)
            self.out.append(("members", name))
            for m in self._sorted(members):
                self.value(m)
            self.out.append(END)
        return self.out

    def _sorted(self, members: Any) -> list[Any]:
        # Order the members by what they are, read without naming anything
        # (a trial walk), then read them for real in that order.
        def trial(m: Any) -> bytes:
            probe = _Walk(self.root, self.skip_root)
            probe.names = dict(self.names)
            probe.alive = list(self.alive)
            probe.value(m)
            return marshal.dumps(probe.out)

        if len(members) < 2:
            return list(members)
        return sorted(members, key=trial)


def encode(root: Any, skip_root: frozenset[str] = frozenset()) -> list[Any]:
    """The canonical form of everything reachable from root, but root's fields in skip_root."""
    walk = _Walk(root, skip_root)
    walk.value(root)
    return walk.finish()


def fingerprint(root: Any, skip_root: frozenset[str] = frozenset()) -> bytes:
    """16 bytes that two states share exactly when their canonical forms are equal."""
    return hashlib.blake2b(marshal.dumps(encode(root, skip_root)), digest_size=16).digest()
