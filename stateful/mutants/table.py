"""The reviewer's table of a design's mutants: terminal, JSON, Markdown and HTML.

One row per mutant: the verdict, the line as the design has it and the
mutant. Killed mutants come first, sorted by the property that killed them
(then by method and line), each with its minimal race diagram and replay
file; then the invalid ones, with the exception; then those proved
equivalent; survivors last, each with its one-line reason and the design's
note, if it gives one. The score is killed / (all - invalid - equivalent);
a note never changes it. Nothing in the output is read from the clock
except the seconds each judgement took, which the JSON keeps apart.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from stateful.mutants.judge import EQUIVALENT, INVALID, KILLED, SURVIVED, Verdict
from stateful.report import _css, _e, _md, _md_block

ORDER = {KILLED: 0, INVALID: 1, EQUIVALENT: 2, SURVIVED: 3}


def ordered(verdicts: Iterable[Verdict]) -> list[Verdict]:
    return sorted(verdicts, key=lambda v: (ORDER[v.kind], v.property, v.method, v.line, v.id))


def word(v: Verdict, bound: str) -> str:
    if v.kind == KILLED:
        return f"killed by {v.property}" + (" (design passes)" if v.design_passes else "")
    if v.kind == SURVIVED:
        return "survived ≤B"
    if v.kind == EQUIVALENT:
        return "proved equivalent ≤B"
    return "invalid"


def score(verdicts: Iterable[Verdict]) -> tuple[int, int, Counter[str]]:
    """(killed, counted) and the count of each verdict: killed / (all - invalid - equivalent)."""
    kinds = Counter(v.kind for v in verdicts)
    counted = kinds[KILLED] + kinds[SURVIVED]
    return kinds[KILLED], counted, kinds


def headline(design: str, verdicts: list[Verdict], bound: str) -> str:
    killed, counted, kinds = score(verdicts)
    # One decimal: against a goal such as 90%, 139 / 155 must not read as met.
    pct = f"{100 * killed / counted:.1f}%" if counted else "n/a"
    return (
        f"{design}: {len(verdicts)} mutants; mutation score {pct} = {killed} killed / "
        f"{counted} ({len(verdicts)} - {kinds[INVALID]} invalid - {kinds[EQUIVALENT]} "
        f"proved equivalent); {kinds[SURVIVED]} survived; B = {bound}"
    )


def render_text(design: str, verdicts: list[Verdict], bound: str) -> str:
    lines = [headline(design, verdicts, bound), ""]
    rows = ordered(verdicts)
    width = max((len(word(v, bound)) for v in rows), default=10)
    for v in rows:
        lines.append(f"{word(v, bound):<{width}}  {v.id}")
        lines.append(f"{'':<{width}}    {v.where}: {v.original}")
        lines.append(f"{'':<{width}}    mutant:  {v.shown}")
        extra = _extra(v)
        if extra:
            lines.append(f"{'':<{width}}    {extra}")
    killed = [v for v in rows if v.kind == KILLED and v.diagram]
    if killed:
        lines += ["", "minimal race diagrams of the killed mutants", ""]
    for v in killed:
        lines += [f"--- {v.id}: {v.property} ({v.cost})", v.detail, "", v.diagram, ""]
    return "\n".join(line.rstrip() for line in lines)


def _extra(v: Verdict) -> str:
    if v.kind == KILLED:
        saved = f"; replay: pytest --replay {v.replay}" if v.replay else ""
        return f"{v.detail} [{v.cost}]{saved}"
    text = v.detail
    if v.note:
        text += f"; the design says: {v.note}"
    return text


def to_json(design: str, verdicts: list[Verdict], bound: str, source: str) -> str:
    killed, counted, kinds = score(verdicts)
    doc = {
        "design": design,
        "bound": bound,
        "design_source": source,
        "mutants": len(verdicts),
        "killed": killed,
        "survived": kinds[SURVIVED],
        "equivalent": kinds[EQUIVALENT],
        "invalid": kinds[INVALID],
        "score": round(killed / counted, 4) if counted else None,
        "rows": [
            {**{k: x for k, x in v.to_dict().items() if k != "seconds"}, "verdict": word(v, bound)}
            for v in ordered(verdicts)
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_markdown(design: str, verdicts: list[Verdict], bound: str) -> str:
    out = [f"# pgfrag: mutants of {_md(design)}", "", _md(headline(design, verdicts, bound)), ""]
    out += [
        "| verdict | mutant ID | line as the design has it | mutant | why |",
        "|---|---|---|---|---|",
    ]
    for v in ordered(verdicts):
        cells = [word(v, bound), v.id, f"{v.where}: {v.original}", v.shown, _extra(v)]
        out.append("| " + " | ".join(_md(c) for c in cells) + " |")
    for v in ordered(verdicts):
        if v.kind == KILLED and v.diagram:
            out += ["", f"## {_md(v.id)}: {_md(v.property)}", "", _md(v.detail), ""]
            out += _md_block(v.diagram)
    return "\n".join(out) + "\n"


def render_html(design: str, verdicts: list[Verdict], bound: str) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>pgfrag: mutants of {_e(design)}</title>",
        f"<style>{_css()}</style></head><body>",
        f"<h1>pgfrag: mutants of {_e(design)}</h1>",
        f"<p>{_e(headline(design, verdicts, bound))}</p>",
        "<table><thead><tr><th>verdict</th><th>mutant ID</th><th>line as the design has it"
        "</th><th>mutant</th><th>why</th></tr></thead><tbody>",
    ]
    for v in ordered(verdicts):
        cells = [word(v, bound), v.id, f"{v.where}: {v.original}", v.shown, _extra(v)]
        out.append("<tr>" + "".join(f"<td><code>{_e(c)}</code></td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    for v in ordered(verdicts):
        if v.kind == KILLED and v.diagram:
            out.append(f"<h2>{_e(v.id)}: {_e(v.property)}</h2><p>{_e(v.detail)}</p>")
            out.append(f"<pre>{_e(v.diagram)}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_reports(
    path: Path, design: str, verdicts: list[Verdict], bound: str
) -> tuple[Path, Path]:
    """PATH.html and PATH.md beside it."""
    html_path = path.with_suffix(".html")
    md_path = path.with_suffix(".md")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(design, verdicts, bound), encoding="utf-8")
    md_path.write_text(render_markdown(design, verdicts, bound), encoding="utf-8")
    return html_path, md_path
