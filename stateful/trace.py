"""Records every step of a run and renders it as a race diagram.

The diagram is the style of kernel commit messages: one column per CPU,
time going down, a softirq shown on top of whatever its CPU was doing
(`<softirq>` ... `</softirq>`, as the kernel's stack dumps mark it), an IPI
as `<IPI>` in the column of each CPU it lands on, and the violation last, in
the wording of the checker that would have caught it. A step's annotations
(what a list holds after it changed, whom a spinning lock waits for) sit
one level deeper than the step.

The diagram fits a mail: no line is longer than `width`. A step too long
for its column is wrapped at its spaces or after its opening parenthesis,
never cut: its continuation lines line up after that parenthesis, or sit
deeper than any annotation. This module knows nothing of the kernel model:
it is handed plain text.
"""

from __future__ import annotations

import re
import textwrap

from attrs import define, field

DIAGRAM_WIDTH = 80
# The fewest columns a step keeps for its text: deeper nesting in the last of
# 3 or 4 columns is squeezed, and never costs the text.
MIN_TEXT = 16
# The least a CPU's column may be wide, when there are more CPUs than fit.
LANE = 40
# Wrapped lines of a step sit deeper than its annotations (one level, 2).
CONTINUATION = 4
# Glued to the word after them: "-> NULL" and "<-- deadlock" stay whole.
ARROWS = frozenset({"->", "<--", "="})


@define(frozen=True)
class Event:
    seq: int
    cpu: int
    softirq: bool
    depth: int
    text: str
    kind: str  # "enter", "step", "note", "violation", "global", "ipi"
    label: str = ""  # for a violation: the property, shown at the step that broke it
    where: str = ""  # for a violation: the access that broke, when no step shows it


@define
class Trace:
    events: list[Event] = field(factory=list)
    enabled: bool = True

    def add(
        self,
        cpu: int,
        softirq: bool,
        depth: int,
        text: str,
        kind: str = "step",
        label: str = "",
        where: str = "",
    ) -> None:
        if self.enabled:
            self.events.append(
                Event(len(self.events), cpu, softirq, depth, text, kind, label, where)
            )

    def render(self, ncpus: int, width: int = DIAGRAM_WIDTH) -> str:
        return render_diagram(self.events, ncpus, width)


# --- wrapping one step ---------------------------------------------------


def _units(text: str) -> list[tuple[str, str]]:
    """(separator before it, unit): a line may break before any unit, and
    drops the separator where it does."""
    parts = re.split(r"( +)", text)  # words at even positions, their spaces between
    units: list[tuple[str, str]] = []
    sep, glue = "", False
    for i, part in enumerate(parts):
        if i % 2:
            sep = part
            continue
        if not part:
            continue
        if glue and units:
            units[-1] = (units[-1][0], units[-1][1] + sep + part)
        else:
            # A call may break after its opening parenthesis, as the kernel's
            # own long calls do: "list_first_entry(" / "mm1->context.pgtable_list)".
            head, paren, rest = part.partition("(")
            if paren and rest and not rest.startswith(")") and _is_call(head):
                units += [(sep, head + paren), ("", rest)]
            else:
                units.append((sep, part))
        glue, sep = part in ARROWS, ""
    return units


def _is_call(head: str) -> bool:
    return bool(head) and (head[-1].isalnum() or head[-1] == "_")


def _fill(units: list[tuple[str, str]], first: int, rest: int) -> list[str]:
    """Greedy fill: `first` columns on the first line, `rest` on the others."""
    lines: list[str] = []
    for sep, unit in units:
        room = first if len(lines) <= 1 else rest
        if not lines:
            lines.append(unit)
        elif len(lines[-1]) + len(sep) + len(unit) <= room:
            lines[-1] += sep + unit
        else:
            lines.append(unit)
    return lines


def _fits(lines: list[str], first: int, rest: int) -> bool:
    return all(len(line) <= (first if i == 0 else rest) for i, line in enumerate(lines))


def _closing(text: str, paren: int) -> int:
    """The index of the parenthesis that closes the one at `paren`."""
    level = 0
    for i in range(paren, len(text)):
        level += {"(": 1, ")": -1}.get(text[i], 0)
        if level == 0:
            return i
    return len(text)


def _split_long(unit: str, room: int) -> list[str]:
    """A unit longer than a line, in pieces of at most `room`, each ending at
    a member access or an underscore where one is near the end."""
    pieces = []
    while len(unit) > room:
        cut = max(unit.rfind(mark, room // 2, room) for mark in ("->", ".", "_", ","))
        cut = room if cut <= 0 else cut + (1 if unit[cut] in "._," else 0)
        pieces.append(unit[:cut])
        unit = unit[cut:]
    return [*pieces, unit]


def _wrap(text: str, indent: int, limit: int) -> tuple[list[str], bool]:
    """(lines, whole): text at `indent` in lines no longer than `limit`;
    whole is False when a unit had to be broken to fit."""
    body = text.lstrip(" ")
    indent += len(text) - len(body)  # leading spaces are indentation
    if indent + len(body) <= limit:
        return [" " * indent + body], True
    units = _units(body)
    first = limit - indent
    conts = [indent + CONTINUATION]
    paren = body.find("(")
    if paren > 0 and _is_call(body[:paren]):
        conts.insert(0, indent + paren + 1)  # under the first argument
    for cont in conts:
        lines = _fill(units, first, limit - cont)
        if cont != conts[-1] and len(lines[0]) > _closing(body, paren):
            continue  # it broke after the call: the arguments are not what goes on
        if _fits(lines, first, limit - cont):
            return [" " * indent + lines[0]] + [" " * cont + line for line in lines[1:]], True
    cont = min(indent + CONTINUATION, max(limit - MIN_TEXT, 0))
    room = max(limit - cont, 1)
    pieces: list[tuple[str, str]] = []
    for sep, unit in units:
        chunks = _split_long(unit, room)
        pieces += [(sep, chunks[0])] + [("", chunk) for chunk in chunks[1:]]
    lines = _fill(pieces, first, room)
    return [" " * indent + lines[0]] + [" " * cont + line for line in lines[1:]], False


def wrap_step(text: str, indent: int, limit: int) -> list[str]:
    """text at `indent`, in lines no longer than `limit`; nothing is dropped
    but the spaces a line breaks at."""
    return _wrap(text, indent, limit)[0]


# --- the diagram -----------------------------------------------------------


def _lanes(ncpus: int, width: int) -> tuple[list[int], int]:
    """Where each CPU's column starts, and how wide its text may run.

    Two CPUs split the width. Three or four cannot each have a column wide
    enough for `spin_lock_bh(&mm1->context.lock)`, so their columns overlap:
    each CPU's text may run LANE wide, and its column is told by where its
    lines start (no two CPUs ever write on one line).
    """
    ncpus = max(ncpus, 1)
    lane = max(width // ncpus, min(width, LANE))
    if ncpus == 1:
        return [0], lane
    return [c * (width - lane) // (ncpus - 1) for c in range(ncpus)], lane


def _column_lines(text: str, depth: int, start: int, lane: int, width: int) -> list[str]:
    """text at depth in the column at `start`, as whole lines of the diagram."""
    # Deep nesting near the right edge gives up indentation first.
    indent = max(0, min(2 * depth, width - start - MIN_TEXT))
    lines, whole = _wrap(text, indent, min(lane, width - start))
    if not whole:
        # Nothing else is written on a step's lines: borrow the columns to
        # the right rather than break a name.
        lines = _wrap(text, indent, width - start)[0]
    return [(" " * start + line).rstrip() for line in lines]


def render_diagram(events: list[Event], ncpus: int, width: int = DIAGRAM_WIDTH) -> str:
    """One column per CPU; the violation messages span the full width at the end."""
    starts, lane = _lanes(ncpus, width)

    def header(names: list[str]) -> str:
        line = ""
        for start, name in zip(starts, names, strict=True):
            line = line.ljust(start) + name
        return line

    out = [header([f"CPU{c}" for c in range(ncpus)]), header(["----"] * ncpus)]
    in_softirq = [False] * ncpus
    last_text = [""] * ncpus  # the last step shown in each column
    for event in events:
        cpu = event.cpu

        def column(text: str, depth: int, cpu: int = cpu) -> list[str]:
            return _column_lines(text, depth, starts[cpu], lane, width)

        if event.kind == "global":
            line = f"  ---- {event.text} ----"
            if len(line) <= width:
                out.append(line.center(width).rstrip())
            else:
                out.extend(textwrap.wrap(line, width, break_on_hyphens=False))
            continue
        if event.kind == "ipi":
            out.extend(column(f"<IPI> {event.text}", 0))
            continue
        if event.softirq != in_softirq[cpu]:
            out.extend(column("<softirq>" if event.softirq else "</softirq>", 0))
            in_softirq[cpu] = event.softirq
        if event.kind == "violation":
            if event.where and event.where != last_text[cpu]:
                # The access that broke was not shown as a step: show it.
                out.extend(column(event.where, event.depth))
            text, depth = f"<-- {event.label}", event.depth
        elif event.kind == "note":
            text, depth = event.text, event.depth + 1
        else:
            text, depth = event.text, event.depth
            last_text[cpu] = event.text.strip()
        out.extend(column(text, depth))
    for v in (e for e in events if e.kind == "violation"):
        out.append("")
        out.extend(
            textwrap.wrap(
                f"CPU{v.cpu}: {v.text}", width, subsequent_indent="  ", break_on_hyphens=False
            )
        )
    return "\n".join(out)
