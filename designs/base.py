"""The Design interface: the contract outside plugins are written against.

A design is a class whose arch hooks are generators run in the context the
kernel runs them in; every `yield from k.<primitive>(...)` is one atomic step.
Hooks and contexts:

    init_context(mm)                 task
    destroy_context(mm)              wherever the final mmdrop runs
    page_table_alloc(mm) -> Table    task
    page_table_free(mm, table)       task
    page_table_free_rcu(tlb, table)  task
    tlb_remove_table(tagged)         __tlb_remove_table: softirq (RCU callback),
                                     or task after the IPI fallback
    pte_free_defer(mm, table)        task; only when supports_defer
    tlb_flush_mm_lazy(mm)            task (context switch)
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from stateful.violations import PROPERTIES

if TYPE_CHECKING:
    from stateful.kernel.world import World

HOOKS: tuple[str, ...] = (
    "init_context",
    "destroy_context",
    "page_table_alloc",
    "page_table_free",
    "page_table_free_rcu",
    "tlb_remove_table",
    "tlb_flush_mm_lazy",
)
DEFER_HOOK = "pte_free_defer"

# The bits of the upper byte of page->_refcount, per half (shift by the bit).
AA = 0x01  # half allocated
HH = 0x04  # half pending free through page->rcu_head (Hugh's designs)
PP = 0x10  # half pending free through __tlb_remove_table


class DesignError(Exception):
    """A design (usually a plugin) does not meet the contract."""


class Design:
    """Base class. Subclasses provide the hooks and the metadata."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    source: ClassVar[str] = ""
    known: ClassVar[Mapping[str, str]] = {}
    supports_defer: ClassVar[bool] = False

    def bad_bits(self, byte: int) -> str | None:
        """Rules every s390 fragment design shares; override to add a design's own."""
        for bit, half in ((0, "lower"), (1, "upper")):
            if byte & (AA << bit) and byte & (PP << bit):
                return f"AA and PP of the {half} half both set"
            if byte & (HH << bit) and not byte & (PP << bit):
                return f"HH without PP on the {half} half"
        return None

    def invariants(self, world: World) -> Iterator[str]:
        """Structural invariants checked between rules; yield a description per breach."""
        return iter(())


def validate(cls: Any, origin: str) -> type[Design]:
    """Refuse, with a message naming what is wrong, a class that breaks the contract."""
    where = f"design {getattr(cls, 'name', '') or cls!r} (from {origin})"
    if not isinstance(cls, type) or not issubclass(cls, Design):
        raise DesignError(f"{origin}: {cls!r} is not a subclass of designs.base.Design")
    problems: list[str] = []
    for attr in ("name", "title", "source"):
        value = getattr(cls, attr, "")
        if not isinstance(value, str) or not value.strip():
            problems.append(f"metadata '{attr}' is missing or empty")
    hooks = HOOKS + ((DEFER_HOOK,) if cls.supports_defer else ())
    for hook in hooks:
        fn = getattr(cls, hook, None)
        if fn is None:
            problems.append(f"hook '{hook}' is missing")
        elif not inspect.isgeneratorfunction(fn):
            problems.append(
                f"hook '{hook}' is not a generator function (its steps must be "
                "`yield from k.<primitive>(...)`)"
            )
    if not isinstance(cls.known, Mapping):
        problems.append("'known' must map property names to one line of why")
    else:
        for prop, why in cls.known.items():
            if prop not in PROPERTIES:
                problems.append(
                    f"'known' names '{prop}', which is no property; valid: " + ", ".join(PROPERTIES)
                )
            elif not isinstance(why, str) or not why.strip():
                problems.append(f"'known[{prop!r}]' needs one line of why")
        if "early-reuse" in cls.known and not cls.supports_defer:
            problems.append("'known' names 'early-reuse' but the design has no pte_free_defer")
    if problems:
        raise DesignError(f"{where} is refused: " + "; ".join(problems))
    return cls
