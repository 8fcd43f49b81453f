"""The mutants of a design: every operator at every site of every method, with stable IDs.

A mutant's ID is `design:method:line:operator`, the line being the line of
the file that writes the method (for an inherited method, the parent's
file). Two mutants of one operator on one line (a bit flipped in either of
two masks) are told apart by their order on the line: `...:flip-bit4#2`.
IDs depend only on the design's source, which `source_hash` fingerprints.
"""

from __future__ import annotations

import ast
import functools
from collections import Counter

from attrs import define

from designs.base import Design
from stateful.mutants.operators import OPERATORS, Context
from stateful.mutants.source import Method, methods


@define(frozen=True)
class Mutant:
    id: str
    design: str
    method: str
    line: int
    operator: str
    path: str  # the file that writes the method
    original: str  # the line as the design has it
    shown: str  # the changed statement(s), as the mutant has them
    lines: tuple[int, ...]  # every line it changes
    owner: type  # the class that writes the method
    tree: ast.FunctionDef

    @property
    def where(self) -> str:
        return f"{self.path.rsplit('/', 2)[-2]}/{self.path.rsplit('/', 1)[-1]}:{self.line}"


def derive(design_cls: type[Design]) -> list[Mutant]:
    """Every mutant of the design, in a stable order: method, line, operator."""
    return list(_derived(design_cls))


@functools.cache
def _derived(design_cls: type[Design]) -> tuple[Mutant, ...]:
    out: list[Mutant] = []
    for method in methods(design_cls):
        out.extend(_of(design_cls, method))
    return tuple(out)


def _of(design_cls: type[Design], method: Method) -> list[Mutant]:
    ctx = Context.of(method.function)
    changes = [c for op in OPERATORS for c in op(method.tree, ctx)]
    changes.sort(key=lambda c: (c.line, c.operator))
    seen: Counter[tuple[int, str]] = Counter()
    out = []
    for c in changes:
        shown = c.shown
        if method.line(c.line).startswith("elif ") and shown.startswith("if "):
            shown = "el" + shown  # an elif's test, shown as the design writes it
        seen[(c.line, c.operator)] += 1
        n = seen[(c.line, c.operator)]
        suffix = f"#{n}" if n > 1 else ""
        out.append(
            Mutant(
                id=f"{design_cls.name}:{method.name}:{c.line}:{c.operator}{suffix}",
                design=design_cls.name,
                method=method.name,
                line=c.line,
                operator=c.operator,
                path=method.path,
                original=method.line(c.line),
                shown=shown,
                lines=c.lines,
                owner=method.owner,
                tree=c.tree,
            )
        )
    return out


def find(design_cls: type[Design], mutant_id: str) -> Mutant | None:
    return next((m for m in derive(design_cls) if m.id == mutant_id), None)
