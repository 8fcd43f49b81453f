"""Design classes built from changed source: a mutant, or the design with its lines counted.

A changed method is compiled from its AST in the globals of the module
that writes it, inside a function that supplies `__class__` (so a bare
`super()` means what it meant), and set on a subclass of the design. The
subclass keeps the design's name, module and qualified name, and the
function its qualified name: the state fingerprint names classes and
functions by those, so a mutant that reaches the same states as its design
shows the same fingerprints, and its end states can be compared with the
design's (stateful/mutants/judge.py).

`counted_class` is the design itself with every statement of its methods
first recording that it ran (`__pgfrag_ran__.add(n)`, in a copy of the
module's globals, so that no frame holds it): how the baseline learns which
lines ran, at a fraction of the cost of a tracer.
"""

from __future__ import annotations

import ast
import copy
import types
from typing import Any

from designs.base import Design
from stateful.mutants.derive import Mutant
from stateful.mutants.operators import nodes
from stateful.mutants.source import Method, methods

FACTORY = "__pgfrag_mutant__"
RAN = "__pgfrag_ran__"


def _compile(
    fdef: ast.FunctionDef, original: types.FunctionType, owner: type, path: str, glob: dict
) -> types.FunctionType:
    factory = ast.FunctionDef(
        name=FACTORY,
        args=ast.arguments(
            posonlyargs=[], args=[ast.arg("__class__")], kwonlyargs=[], kw_defaults=[], defaults=[]
        ),
        body=[fdef, ast.Return(ast.Name(fdef.name, ast.Load()))],
        decorator_list=[],
        returns=None,
        lineno=fdef.lineno,
        col_offset=0,
        end_lineno=fdef.end_lineno,
        end_col_offset=0,
    )
    for sub in ast.walk(factory.body[1]):
        ast.copy_location(sub, fdef)
    module = ast.fix_missing_locations(ast.Module([factory], type_ignores=[]))
    namespace: dict[str, Any] = {}
    exec(compile(module, path, "exec"), glob, namespace)  # noqa: S102 - the design's own source
    fn = namespace[FACTORY](owner)
    assert isinstance(fn, types.FunctionType)
    fn.__code__ = fn.__code__.replace(co_qualname=original.__code__.co_qualname)
    fn.__qualname__ = original.__qualname__
    fn.__module__ = original.__module__
    fn.__defaults__ = original.__defaults__
    fn.__kwdefaults__ = original.__kwdefaults__
    return fn


def _subclass(design_cls: type[Design], body: dict[str, Any], doc: str) -> type[Design]:
    body |= {
        "__module__": design_cls.__module__,
        "__qualname__": design_cls.__qualname__,
        "__doc__": doc,
    }
    return type(design_cls.__name__, (design_cls,), body)


def mutant_class(design_cls: type[Design], mutant: Mutant) -> type[Design]:
    original = getattr(design_cls, mutant.method)
    fn = _compile(
        copy.deepcopy(mutant.tree), original, mutant.owner, mutant.path, original.__globals__
    )
    return _subclass(
        design_cls,
        {mutant.method: fn, "mutant_id": mutant.id},
        f"{design_cls.name} with mutant {mutant.id}: {mutant.shown}",
    )


def counted_class(
    design_cls: type[Design], mutant: Mutant | None = None
) -> tuple[type[Design], set[int], list[tuple[str, tuple[int, ...]]]]:
    """The design (or its mutant), counting: (class, the numbers of the
    statements that ran, number -> (file, lines of that statement; a
    compound one's header only)). A mutant's changed method has its own
    name in generator frames (`<mutant>`): a state with it in flight is
    never taken for one of the design's (stateful/mutants/explore.py)."""
    ran: set[int] = set()
    where: list[tuple[str, tuple[int, ...]]] = []
    body: dict[str, Any] = {}
    globs: dict[int, dict[str, Any]] = {}
    for method in methods(design_cls):
        changed = mutant is not None and method.name == mutant.method
        fdef = copy.deepcopy(mutant.tree if changed and mutant else method.tree)
        _count(fdef, method, where)
        glob = globs.get(id(method.function.__globals__))
        if glob is None:
            glob = globs[id(method.function.__globals__)] = dict(method.function.__globals__)
            glob[RAN] = ran
        fn = _compile(fdef, method.function, method.owner, method.path, glob)
        if changed:
            fn.__code__ = fn.__code__.replace(co_qualname=fn.__code__.co_qualname + "<mutant>")
        body[method.name] = fn
    doc = f"{design_cls.name}, counting its lines"
    if mutant is not None:
        body["mutant_id"] = mutant.id
        doc = f"{design_cls.name} with mutant {mutant.id}, counting its lines"
    return _subclass(design_cls, body, doc), ran, where


def _count(fdef: ast.FunctionDef, method: Method, where: list[tuple[str, tuple[int, ...]]]) -> None:
    blocks = [fdef.body]
    for node in nodes(fdef):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                blocks.append(block)
    for block in blocks:
        counted = []
        for stmt in block:
            end = stmt.end_lineno or stmt.lineno
            if isinstance(stmt, ast.If | ast.While):
                end = stmt.test.end_lineno or stmt.lineno
            elif hasattr(stmt, "body"):
                end = stmt.lineno
            where.append((method.path, tuple(range(stmt.lineno, end + 1))))
            record = ast.parse(f"{RAN}.add({len(where) - 1})").body[0]
            for sub in ast.walk(record):
                ast.copy_location(sub, stmt)
            counted += [record, stmt]
        block[:] = counted
