"""The design's own source: the generator methods a mutant may change, read with ast.

A design's steps are its generator methods: the hooks and the helpers they
call (`free_list_step`, `pte_free_half`, ...), wherever in the design's
class hierarchy they are written. An inherited method is read from the
class that writes it and mutated for the design that inherits it. The
checks of the contract (`bad_bits`, `invariants`, defined on
designs.base.Design) are the judge, not the design: they are never
mutated, and neither is anything outside the design's classes (the kernel
model's primitives, `k.<primitive>`).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import types
from pathlib import Path

from attrs import define

from designs.base import Design


class SourceError(Exception):
    """The design's source cannot be read, so no mutant can be made from it."""


@define(frozen=True)
class Method:
    """One generator method, as its class writes it."""

    name: str
    owner: type  # the class whose body writes it
    function: types.FunctionType
    path: str  # its source file
    tree: ast.FunctionDef  # with the file's line numbers
    lines: tuple[str, ...]  # the whole file, for quoting a line as the design has it

    def line(self, number: int) -> str:
        return self.lines[number - 1].strip() if 0 < number <= len(self.lines) else ""


def _checks() -> frozenset[str]:
    return frozenset(n for n, v in vars(Design).items() if callable(v))


def methods(design_cls: type[Design]) -> list[Method]:
    """Every generator method of the design, inherited ones included, in name order."""
    checks = _checks()
    found: list[Method] = []
    for name in sorted(dir(design_cls)):
        if name.startswith("__") or name in checks:
            continue
        owner = next((c for c in design_cls.__mro__ if name in vars(c)), None)
        if owner is None or owner is Design or not issubclass(owner, Design):
            continue
        fn = vars(owner)[name]
        if not isinstance(fn, types.FunctionType) or not inspect.isgeneratorfunction(fn):
            continue
        found.append(_read(design_cls, name, owner, fn))
    if not found:
        raise SourceError(f"design {design_cls.name!r} has no generator methods to mutate")
    return found


def _read(design_cls: type[Design], name: str, owner: type, fn: types.FunctionType) -> Method:
    where = f"design {design_cls.name!r}: {owner.__qualname__}.{name}"
    # The file the code was compiled from: what a line of the running code names.
    path = fn.__code__.co_filename
    try:
        block, start = inspect.getsourcelines(fn)
    except (OSError, TypeError) as exc:
        raise SourceError(
            f"{where} has no readable source ({exc}); a design built at run time "
            "(exec, type(), a class without a file) cannot be mutated"
        ) from None
    if not Path(path).is_file():
        raise SourceError(f"{where}: its source file {path} does not exist")
    try:
        whole = Path(path).read_text(encoding="utf-8").splitlines()
        tree = ast.parse(textwrap.dedent("".join(block)))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise SourceError(f"{where}: its source {path} cannot be read: {exc}") from None
    fdef = tree.body[0] if tree.body else None
    if not isinstance(fdef, ast.FunctionDef) or fdef.name != name:
        raise SourceError(f"{where}: the source at {path}:{start} is not its definition")
    ast.increment_lineno(fdef, start - 1)
    fdef.decorator_list = []
    return Method(name, owner, fn, path, fdef, tuple(whole))


def source_hash(design_cls: type[Design]) -> str:
    """The hash of every method a mutant may change, as written: a mutant ID
    (design, method, line, operator) names the same change only while it holds."""
    h = hashlib.sha256()
    for m in methods(design_cls):
        h.update(f"{m.owner.__module__}.{m.owner.__qualname__}.{m.name}\n".encode())
        h.update(ast.dump(m.tree, include_attributes=True).encode())
    return h.hexdigest()[:16]
