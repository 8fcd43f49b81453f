"""The mutation operators, over the AST of one generator method of a design.

Each operator finds its sites in the method as written and makes, for each,
a changed copy of the method's AST. The operators are the same for every
design; they know the kernel model only as the module designs import
(`from stateful.kernel import api as k`), under whatever name it has there.

  delete-step     drop one `yield from k.<primitive>(...)` statement; where
                  the step's result is used (`mask = yield from
                  k.atomic_xor_bits(page, ...)`), the step becomes the plain
                  read of the same object (`k.atomic_read(page)`)
  lock-flavour    spin_lock <-> spin_lock_bh, with the unlocks that pair with it
  list_add_tail, list_add, list_del_init, list_del
                  one list primitive swapped for its sibling
  flip-bitN       bit N (0-5) of the _refcount upper byte flipped in the
                  evaluated mask of an atomic_xor_bits (`^ 1 << (N + 24)`), or
                  bit N of a mask tested with `&` in a condition (`^ 1 << N`)
  drop-temp-bitN  bit N removed from an atomic_xor_bits and from the later
                  one of the same method, on the same object and at the same
                  shift, that toggles it back: "is the temporary PP needed?"
  negate          one condition negated (`if`, `elif`, a conditional expression)
  drop-condition  one `if`/`elif` test made always true: the branch without
                  its guard (beyond the issue's list: "is this test needed?")
  swap-next       one step swapped with the step after it in the same block

A site that leaves the method with no step at all keeps it a generator
(`yield from ()`): the kernel's empty function, not a crash.
"""

from __future__ import annotations

import ast
import copy
import types
from collections.abc import Callable, Iterator
from typing import Any

from attrs import define

from stateful.kernel import api

# A primitive whose result is used, and the plain read of the same object.
READ_OF = {"atomic_xor_bits": "atomic_read", "TestClearPageActive": "PageActive"}
LOCK_PAIRS = {"spin_lock": "spin_lock_bh", "spin_lock_bh": "spin_lock"}
UNLOCK_OF = {"spin_lock": "spin_unlock", "spin_lock_bh": "spin_unlock_bh"}
LIST_SWAPS = {
    "list_add": "list_add_tail",
    "list_add_tail": "list_add",
    "list_del": "list_del_init",
    "list_del_init": "list_del",
}
BYTE_SHIFT = 24  # the fragment byte is the top byte of _refcount
BITS = range(6)  # AA (0-1), HH (2-3), PP (4-5)


@define(frozen=True)
class Change:
    """One mutant of one method: the changed AST and what the reviewer is shown."""

    operator: str
    line: int  # the line the mutant ID names: the first line it changes
    lines: tuple[int, ...]  # every line it changes
    tree: ast.FunctionDef
    shown: str  # the changed statement(s), as the mutant has them


@define(frozen=True)
class Context:
    """What an operator needs to read the method: the names of the kernel api."""

    api_names: frozenset[str]
    globals: dict[str, Any]

    @classmethod
    def of(cls, fn: types.FunctionType) -> Context:
        names = frozenset(n for n, v in fn.__globals__.items() if v is api)
        return cls(names, fn.__globals__)

    def primitive(self, node: ast.AST) -> str | None:
        """`k.<name>` -> name, where k is the kernel api module."""
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in self.api_names
        ):
            return node.attr
        return None

    def call_of(self, node: ast.AST) -> str | None:
        return self.primitive(node.func) if isinstance(node, ast.Call) else None

    def constant(self, node: ast.expr) -> int | None:
        """The value of a mask written with constants and module-level names (AA | PP)."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and not isinstance(self.globals.get(sub.id), int):
                return None
            if not isinstance(sub, ast.Name | ast.Constant | ast.BinOp | ast.operator | ast.Load):
                return None
        try:
            value = eval(compile(ast.Expression(node), "<mask>", "eval"), dict(self.globals))  # noqa: S307
        except Exception:
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- walking one method --------------------------------------------------

NESTED = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef


def nodes(fdef: ast.FunctionDef) -> list[ast.AST]:
    """The method's nodes in source order (pre-order), nested definitions left out:
    the same list, index for index, for a deep copy."""
    out: list[ast.AST] = []

    def visit(node: ast.AST) -> None:
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, NESTED):
                continue
            visit(child)

    for stmt in fdef.body:
        visit(stmt)
    return out


def _blocks(fdef: ast.FunctionDef) -> Iterator[list[ast.stmt]]:
    yield fdef.body
    for node in nodes(fdef):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block


def _place(fdef: ast.FunctionDef, stmt: ast.stmt) -> tuple[list[ast.stmt], int]:
    for block in _blocks(fdef):
        for i, s in enumerate(block):
            if s is stmt:
                return block, i
    raise LookupError(f"statement at line {stmt.lineno} not found")


def _statement_of(fdef: ast.FunctionDef, target: ast.AST) -> ast.stmt:
    """The innermost statement holding target."""
    best: ast.stmt | None = None
    for node in nodes(fdef):
        if isinstance(node, ast.stmt) and any(n is target for n in ast.walk(node)):
            best = node
    assert best is not None
    return best


def _keep_generator(fdef: ast.FunctionDef) -> None:
    if not any(isinstance(n, ast.Yield | ast.YieldFrom) for n in nodes(fdef)):
        keep = ast.Expr(ast.YieldFrom(ast.Tuple([], ast.Load())))
        fdef.body.append(ast.fix_missing_locations(ast.copy_location(keep, fdef.body[-1])))


def _lines(*nodes_: ast.AST) -> tuple[int, ...]:
    out: set[int] = set()
    for n in nodes_:
        out.update(range(n.lineno, (n.end_lineno or n.lineno) + 1))  # type: ignore[attr-defined]
    return tuple(sorted(out))


# --- showing a mutant ----------------------------------------------------


def _hexed(node: ast.AST) -> ast.AST:
    """A copy for display: masks in hex as the C writes them, shift counts in decimal."""
    node = copy.deepcopy(node)

    def visit(n: ast.AST, shift: bool) -> None:
        for name, value in ast.iter_fields(n):
            children = value if isinstance(value, list) else [value]
            for i, child in enumerate(children):
                if not isinstance(child, ast.AST):
                    continue
                in_shift = shift or (
                    isinstance(n, ast.BinOp)
                    and isinstance(n.op, ast.LShift | ast.RShift)
                    and name == "right"
                )
                if (
                    isinstance(child, ast.Constant)
                    and type(child.value) is int
                    and child.value > 1
                    and not in_shift
                ):
                    hexed = ast.Name(f"{child.value:#04x}", ast.Load())
                    if isinstance(value, list):
                        value[i] = hexed
                    else:
                        setattr(n, name, hexed)
                    continue
                visit(child, in_shift)

    visit(node, False)
    return node


def show(stmt: ast.stmt) -> str:
    """A statement as one line: a compound one by its header."""
    shown = _hexed(stmt)
    if isinstance(shown, ast.If | ast.While):
        keyword = "if" if isinstance(shown, ast.If) else "while"
        return f"{keyword} {ast.unparse(shown.test)}:"
    return " ".join(ast.unparse(shown).split())


# --- the operators -------------------------------------------------------

Operator = Callable[[ast.FunctionDef, Context], Iterator[Change]]


def _each(
    fdef: ast.FunctionDef, match: Callable[[ast.AST], bool]
) -> Iterator[tuple[int, ast.FunctionDef, ast.AST]]:
    """Every matching node, with a fresh copy of the method and the node's twin in it."""
    for i, node in enumerate(nodes(fdef)):
        if match(node):
            twin = copy.deepcopy(fdef)
            yield i, twin, nodes(twin)[i]


def delete_step(fdef: ast.FunctionDef, ctx: Context) -> Iterator[Change]:
    # A step whose result is unused is deleted as a statement, not read instead.
    statements = {id(n.value) for n in nodes(fdef) if isinstance(n, ast.Expr)}

    def match(n: ast.AST) -> bool:
        return id(n) not in statements and _step_call(n, ctx) is not None

    for _, twin, node in _each(fdef, match):
        assert isinstance(node, ast.YieldFrom | ast.stmt)
        call = _step_call(node, ctx)
        assert call is not None
        name = ctx.call_of(call)
        if isinstance(node, ast.Expr):
            block, at = _place(twin, node)
            del block[at]
            if not block:
                block.append(ast.copy_location(ast.Pass(), node))
            _keep_generator(twin)
            yield Change("delete-step", node.lineno, _lines(node), twin, "(deleted)")
        elif name in READ_OF and call.args:
            stmt = _statement_of(twin, node)
            call.func = ast.Attribute(call.func.value, READ_OF[name], ast.Load())  # type: ignore[attr-defined]
            call.args = call.args[:1]
            call.keywords = []
            yield Change("delete-step", call.lineno, _lines(call), twin, show(stmt))


def _step_call(node: ast.AST, ctx: Context) -> ast.Call | None:
    """A step of the kernel: `yield from k.x(...)` as a statement, or used as a value."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.YieldFrom):
        call = node.value.value
        return call if ctx.call_of(call) is not None else None
    if isinstance(node, ast.YieldFrom) and ctx.call_of(node.value) in READ_OF:
        return node.value  # type: ignore[return-value]
    return None


def lock_flavour(fdef: ast.FunctionDef, ctx: Context) -> Iterator[Change]:
    for i, twin, node in _each(fdef, lambda n: ctx.call_of(n) in LOCK_PAIRS):
        assert isinstance(node, ast.Call)
        flavour = ctx.call_of(node)
        assert flavour is not None
        lock = ast.dump(node.args[0]) if node.args else ""
        paired = []
        for later in nodes(twin)[i + 1 :]:
            name = ctx.call_of(later)
            if name in LOCK_PAIRS and _same_lock(later, lock):
                break  # the next section on this lock has its own unlocks
            if name == UNLOCK_OF[flavour] and _same_lock(later, lock):
                paired.append(later)
        other = LOCK_PAIRS[flavour]
        for call, name in [(node, other), *((u, UNLOCK_OF[other]) for u in paired)]:
            assert isinstance(call, ast.Call)
            call.func = ast.Attribute(call.func.value, name, ast.Load())  # type: ignore[attr-defined]
        stmts = [_statement_of(twin, c) for c in [node, *paired]]
        shown = " ... ".join(show(s) for s in stmts)
        yield Change("lock-flavour", node.lineno, _lines(*stmts), twin, shown)


def _same_lock(call: ast.AST, lock: str) -> bool:
    return isinstance(call, ast.Call) and bool(call.args) and ast.dump(call.args[0]) == lock


def list_swap(fdef: ast.FunctionDef, ctx: Context) -> Iterator[Change]:
    for _, twin, node in _each(fdef, lambda n: ctx.primitive(n) in LIST_SWAPS):
        assert isinstance(node, ast.Attribute)
        node.attr = LIST_SWAPS[node.attr]
        stmt = _statement_of(twin, node)
        yield Change(node.attr, node.lineno, (node.lineno,), twin, show(stmt))


def flip_bit(fdef: ast.FunctionDef, ctx: Context) -> Iterator[Change]:
    """Flip one bit of an xor's mask (in the byte, at bit + 24) or of a tested mask."""
    tested = {id(n) for n in _tested_masks(fdef)}
    for index, node in enumerate(nodes(fdef)):
        xor = ctx.call_of(node) == "atomic_xor_bits" and len(node.args) >= 2  # type: ignore[attr-defined]
        if not xor and id(node) not in tested:
            continue
        for bit in BITS:
            twin = copy.deepcopy(fdef)
            target = nodes(twin)[index]
            if xor:
                assert isinstance(target, ast.Call)
                flip: ast.expr = ast.BinOp(ast.Constant(1 << bit), ast.LShift(), ast.Constant(24))
                target.args[1] = ast.BinOp(target.args[1], ast.BitXor(), flip)
                where = target.args[1]
            else:
                assert isinstance(target, ast.BinOp)
                target.right = ast.BinOp(target.right, ast.BitXor(), ast.Constant(1 << bit))
                where = target.right
            ast.copy_location(where, target)
            ast.fix_missing_locations(twin)
            stmt = _statement_of(twin, target)
            yield Change(f"flip-bit{bit}", target.lineno, (target.lineno,), twin, show(stmt))


def _tested_masks(fdef: ast.FunctionDef) -> Iterator[ast.BinOp]:
    for node in nodes(fdef):
        if isinstance(node, ast.If | ast.While | ast.IfExp):
            for sub in ast.walk(node.test):
                if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.BitAnd):
                    yield sub


def drop_temp_bit(fdef: ast.FunctionDef, ctx: Context) -> Iterator[Change]:
    """Bit N out of an xor and out of the later xor that toggles it back."""
    xors: list[tuple[int, str, str, int]] = []  # node index, object, shift, flags
    for index, node in enumerate(nodes(fdef)):
        if ctx.call_of(node) != "atomic_xor_bits" or len(node.args) < 2:  # type: ignore[attr-defined]
            continue
        mask = node.args[1]  # type: ignore[attr-defined]
        if isinstance(mask, ast.BinOp) and isinstance(mask.op, ast.LShift):
            flags = ctx.constant(mask.left)
            if flags is not None:
                xors.append((index, ast.dump(node.args[0]), ast.dump(mask.right), flags))  # type: ignore[attr-defined]
    at0 = nodes(fdef)
    for n, (first, obj, shift, flags) in enumerate(xors):
        for bit in BITS:
            if not flags & (1 << bit):
                continue
            later = next(
                (
                    x
                    for x in xors[n + 1 :]
                    if x[1:3] == (obj, shift)
                    and x[3] & (1 << bit)
                    and _follows(fdef, at0[first], at0[x[0]])
                ),
                None,
            )
            if later is None:
                continue
            twin = copy.deepcopy(fdef)
            at = nodes(twin)
            changed = []
            for index, value in ((first, flags), (later[0], later[3])):
                call = at[index]
                assert isinstance(call, ast.Call)
                changed.append(_statement_of(twin, call))
                left = value & ~(1 << bit)
                if left:
                    call.args[1].left = ast.copy_location(ast.Constant(left), call.args[1].left)  # type: ignore[attr-defined]
                else:
                    _to_read(twin, call)
            _keep_generator(twin)
            ast.fix_missing_locations(twin)
            shown = " ... ".join(show(s) if _in(twin, s) else "(deleted)" for s in changed)
            yield Change(f"drop-temp-bit{bit}", at[first].lineno, _lines(*changed), twin, shown)


def _follows(fdef: ast.FunctionDef, first: ast.AST, later: ast.AST) -> bool:
    """`later` runs after `first` on the same path: it is in a statement that
    comes after first's statement in first's own block."""
    stmt = _statement_of(fdef, first)
    block, at = _place(fdef, stmt)
    return any(n is later for s in block[at + 1 :] for n in ast.walk(s))


def _in(fdef: ast.FunctionDef, stmt: ast.stmt) -> bool:
    return any(n is stmt for n in nodes(fdef))


def _to_read(fdef: ast.FunctionDef, call: ast.Call) -> None:
    """An xor left with no bit: a plain read where its value is used, else no step."""
    stmt = _statement_of(fdef, call)
    if isinstance(stmt, ast.Expr):
        block, at = _place(fdef, stmt)
        del block[at]
        if not block:
            block.append(ast.copy_location(ast.Pass(), stmt))
        return
    call.func = ast.Attribute(call.func.value, "atomic_read", ast.Load())  # type: ignore[attr-defined]
    call.args = call.args[:1]


def negate(fdef: ast.FunctionDef, ctx: Context) -> Iterator[Change]:
    for _, twin, node in _each(fdef, lambda n: isinstance(n, ast.If | ast.While | ast.IfExp)):
        assert isinstance(node, ast.If | ast.While | ast.IfExp)
        node.test = ast.copy_location(ast.UnaryOp(ast.Not(), node.test), node.test)
        stmt = _statement_of(twin, node)
        yield Change("negate", node.test.lineno, (node.test.lineno,), twin, show(stmt))


def drop_condition(fdef: ast.FunctionDef, ctx: Context) -> Iterator[Change]:
    for _, twin, node in _each(fdef, lambda n: isinstance(n, ast.If)):
        assert isinstance(node, ast.If)
        node.test = ast.copy_location(ast.Constant(True), node.test)
        yield Change("drop-condition", node.lineno, (node.lineno,), twin, show(node))


def _is_step(stmt: ast.stmt) -> bool:
    value = getattr(stmt, "value", None)
    return isinstance(stmt, ast.Expr | ast.Assign | ast.AugAssign | ast.AnnAssign) and isinstance(
        value, ast.YieldFrom
    )


def swap_next(fdef: ast.FunctionDef, ctx: Context) -> Iterator[Change]:
    for number, block in enumerate(_blocks(fdef)):
        for i in range(len(block) - 1):
            a, b = block[i], block[i + 1]
            if not (_is_step(a) and _is_step(b)):
                continue
            twin = copy.deepcopy(fdef)
            twin_block = list(_blocks(twin))[number]
            twin_block[i], twin_block[i + 1] = twin_block[i + 1], twin_block[i]
            shown = f"{show(twin_block[i])}; {show(twin_block[i + 1])}"
            yield Change("swap-next", a.lineno, _lines(a, b), twin, shown)


OPERATORS: tuple[Operator, ...] = (
    delete_step,
    lock_flavour,
    list_swap,
    flip_bit,
    drop_temp_bit,
    negate,
    drop_condition,
    swap_next,
)
