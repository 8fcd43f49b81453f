"""Records every step of a run and renders it as a race diagram.

The diagram is the style of kernel commit messages: one column per CPU,
time going down, a softirq shown on top of whatever its CPU was doing, and
the violation last, in the wording of the checker that would have caught it.
This module knows nothing of the kernel model: it is handed plain text.
"""

from __future__ import annotations

import textwrap

from attrs import define, field

DIAGRAM_WIDTH = 80


@define(frozen=True)
class Event:
    seq: int
    cpu: int
    softirq: bool
    depth: int
    text: str
    kind: str  # "enter", "step", "violation", "global"
    label: str = ""  # for a violation: the property, shown at the step that broke it


@define
class Trace:
    events: list[Event] = field(factory=list)
    enabled: bool = True

    def add(
        self, cpu: int, softirq: bool, depth: int, text: str, kind: str = "step", label: str = ""
    ) -> None:
        if self.enabled:
            self.events.append(Event(len(self.events), cpu, softirq, depth, text, kind, label))

    def render(self, ncpus: int, width: int = DIAGRAM_WIDTH) -> str:
        return render_diagram(self.events, ncpus, width)


def _column_lines(event: Event, first_of_softirq: bool, colw: int) -> list[str]:
    indent = "  " * event.depth
    text = event.text
    if event.kind == "violation":
        text = f"<-- {event.label}"
    lines: list[str] = []
    if first_of_softirq:
        lines.append(indent[:-2] + "<softirq>" if indent else "<softirq>")
    avail = max(colw - len(indent) - 1, 12)
    wrapped = textwrap.wrap(text, avail, subsequent_indent="  ", break_on_hyphens=False) or [""]
    lines.extend(indent + part for part in wrapped)
    return lines


def render_diagram(events: list[Event], ncpus: int, width: int = DIAGRAM_WIDTH) -> str:
    """One column per CPU; a violation line spans the full width at the end."""
    colw = width // max(ncpus, 1)
    out: list[str] = []
    header = "".join(f"CPU{c}".ljust(colw) for c in range(ncpus)).rstrip()
    out.append(header)
    out.append("".join(("-" * len(f"CPU{c}")).ljust(colw) for c in range(ncpus)).rstrip())
    in_softirq = [False] * ncpus
    for event in events:
        if event.kind == "global":
            out.append(f"  ---- {event.text} ----".center(width).rstrip())
            continue
        first_soft = event.softirq and not in_softirq[event.cpu]
        in_softirq[event.cpu] = event.softirq
        pad = " " * (colw * event.cpu)
        for line in _column_lines(event, first_soft, colw):
            out.append((pad + line).rstrip())
    violations = [e for e in events if e.kind == "violation"]
    for v in violations:
        out.append("")
        out.extend(textwrap.wrap(f"CPU{v.cpu}: {v.text}", width, subsequent_indent="  "))
    return "\n".join(out)
