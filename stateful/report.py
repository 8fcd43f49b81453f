"""The report of a run, as one HTML file and its Markdown twin: what a kernel developer forwards.

    write_report(Path("report.html"), data)    # writes report.html and report.md

It is rendered from plain data (ReportData), so it needs neither pytest nor a
run: the designs x properties verdicts and the memory costs in one table (a
row per design), the legends, each design's survey line, the contention
table, then every found bug with its message, its race diagram and the
command that replays it. The same data gives the same bytes: nothing in
it is read from the clock or the machine.

The HTML is one file with its CSS inline, no JavaScript and nothing fetched,
so that it opens the same from a mail attachment as from the disk.
"""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from attrs import define, field

from stateful.measures.render import (
    COMMAND,
    MEMORY_COLUMNS,
    MEMORY_LEGEND,
    MEMORY_WORKLOAD,
    STOPPED,
    measure_notes,
    measures_seed,
    memory_cells,
)
from stateful.measures.results import Measures
from stateful.measures.waste import WasteSeries
from stateful.measures.waste_html import WASTE_CSS, waste_html, waste_markdown

REPLAY_COMMAND = "pytest --replay"
NOT_RUN = "-"

# The cell words of the verdict table (conftest.py's), with their colours:
# (CSS class, background, text). Those that fail the run are the loud ones;
# FOUND is the expected answer for a known bug, but still a bug of the design.
CELL_STYLES: dict[str, tuple[str, str, str]] = {
    "FOUND": ("v-found", "#f4c2b8", "#5a1208"),
    "held": ("v-held", "#cdebcf", "#113d17"),
    # The exhaustive search's "held": no interleaving within the bound violates it.
    "proved ≤B": ("v-proved", "#8fd19e", "#0b2e13"),
    "NEW BUG": ("v-new-bug", "#c1121f", "#ffffff"),
    "MISSED": ("v-missed", "#e36414", "#ffffff"),
    "ERROR": ("v-error", "#5b2a86", "#ffffff"),
    "n/a": ("v-na", "#ececec", "#666666"),
    NOT_RUN: ("v-none", "#ffffff", "#999999"),
}
OTHER_STYLE = ("v-other", "#fff3b0", "#000000")  # a word this module does not know yet
# Markdown has no colour: the words that mean "this design has a bug" or "the run failed"
# are bold, so that they stand out of a column of "held".
LOUD = frozenset({"FOUND", "NEW BUG", "MISSED", "ERROR"})


@define(frozen=True)
class FoundBug:
    design: str
    property: str  # a name of stateful.violations.PROPERTIES, e.g. "deadlock"
    message: str  # the violation message, in the kernel checker's wording; may be multi-line
    diagram: str  # the race diagram: monospace, <= 80 columns
    replay_file: str | None  # relative to the project root; None if it was not saved


@define
class ReportData:
    title: str
    run: str  # one line: how the run was made (command, profile, seed, versions)
    designs: list[str]  # the rows, in order
    properties: list[str]  # the verdict columns, in order, full names
    short: dict[str, str]  # property -> column heading; a property missing here is its own heading
    # (design, property) -> a cell word of CELL_STYLES; absent: not run, shown NOT_RUN.
    results: dict[tuple[str, str], str]
    legend: list[str] = field(factory=list)  # lines that explain the cell words
    surveys: dict[str, str] = field(factory=dict)  # design -> its survey line
    measures: dict[str, Measures] = field(factory=dict)  # design -> stateful.measures.measure()
    measures_broken: dict[str, str] = field(factory=dict)  # design -> "not measured: ..."
    contention: str = ""  # stateful.measures.render_contention(measures), or ""
    bugs: list[FoundBug] = field(factory=list)
    waste: list[WasteSeries] = field(factory=list)  # stateful.measures.waste: plotted per workload


def write_report(path: Path, data: ReportData) -> tuple[Path, Path]:
    """Write path (HTML) and path.with_suffix('.md'); return both."""
    md_path = path.with_suffix(".md")
    if md_path == path:
        raise ValueError(f"{path}: the HTML report needs a suffix other than .md")
    page, text = render_html(data), render_markdown(data)  # both before either file is touched
    path.parent.mkdir(parents=True, exist_ok=True)
    # newline="\n": the same bytes on every platform.
    path.write_text(page, encoding="utf-8", newline="\n")
    md_path.write_text(text, encoding="utf-8", newline="\n")
    return path, md_path


def _check(data: ReportData) -> None:
    """Refuse data the table would silently drop: every result, survey and measure has a row."""
    rows, columns = set(data.designs), set(data.properties)
    problems = [f"duplicate design {d!r}" for d in _duplicates(data.designs)]
    problems += [f"duplicate property {p!r}" for p in _duplicates(data.properties)]
    problems += [
        f"result for {d!r}/{p!r}, not a row and column of the table"
        for d, p in data.results
        if d not in rows or p not in columns
    ]
    for what, keys in (
        ("survey", data.surveys),
        ("measures", data.measures),
        ("measures_broken", data.measures_broken),
    ):
        problems += [f"{what} of {d!r}, not a design of the table" for d in keys if d not in rows]
    problems += [
        f"{d!r} is both measured and not measured"
        for d in data.measures
        if d in data.measures_broken
    ]
    if problems:
        raise ValueError("report data: " + "; ".join(problems))


def _duplicates(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


def _cell(data: ReportData, design: str, prop: str) -> str:
    return data.results.get((design, prop), NOT_RUN)


def _style(word: str) -> tuple[str, str, str]:
    return CELL_STYLES.get(word, OTHER_STYLE)


def _bug_anchor(index: int, bug: FoundBug) -> str:
    # An id is one token: the index keeps two bugs whose names slug alike apart.
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{bug.design}--{bug.property}").strip("-")
    return f"bug-{index + 1}-{slug}"


def _replay_commands(replay_file: str) -> tuple[str, str]:
    """The command that replays the file on its design, and on another one."""
    run = f"{REPLAY_COMMAND} {shlex.quote(replay_file)}"
    return run, f"{run} --design OTHER"


def _measure_notes(data: ReportData) -> list[str]:
    notes = [
        note
        for d in data.designs
        if d in data.measures
        for note in measure_notes(d, data.measures[d])
    ]
    notes += [f"{d}: {data.measures_broken[d]}" for d in data.designs if d in data.measures_broken]
    return notes


def _costs_heading(data: ReportData) -> str:
    seed = measures_seed(data.measures)
    return f"{MEMORY_WORKLOAD}; seed {seed} ({COMMAND} --seed {seed})"


# ---------------------------------------------------------------------------- HTML


def _css() -> str:
    cells = "\n".join(
        f".{cls} {{ background: {bg}; color: {fg}; }}"
        for cls, bg, fg in [*CELL_STYLES.values(), OTHER_STYLE]
    )
    return f"""\
body {{ font: 15px/1.45 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1b1b1b;
  margin: 20px 24px; max-width: 1400px; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
h2 {{ font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ccc; }}
h3 {{ font-size: 16px; margin: 22px 0 6px; }}
pre, code, .run, td.m {{ font-family: "DejaVu Sans Mono", "Liberation Mono", Consolas, monospace; }}
.run {{ color: #555; font-size: 13px; margin: 0 0 16px; }}
/* Ten verdicts and eight costs in a row: compact enough for 1280 pixels. */
table.results {{ border-collapse: collapse; font-size: 12.5px; }}
table.results th, table.results td {{ border: 1px solid #b9b9b9; padding: 3px 5px;
  white-space: nowrap; }}
table.results thead th {{ background: #f0f0f0; font-weight: 600; }}
table.results th.group {{ background: #e2e2e2; }}
table.results tbody th {{ text-align: left; font-weight: 600; }}
td.v {{ text-align: center; }}
td.v a {{ color: inherit; }}
td.m {{ text-align: right; }}
td.m.first {{ border-left: 3px solid #8a8a8a; }}
table.results td.broken {{ white-space: normal; text-align: left; font-family: inherit;
  color: #7a1a1a; background: #fbeaea; }}
/* Wraps within the cost columns instead of widening them to its own length. */
td.broken div {{ width: 0; min-width: 100%; }}
{cells}
.v-new-bug, .v-missed, .v-error {{ font-weight: bold; }}
.legend {{ margin-top: 10px; }}
.legend p, .legend dl {{ margin: 4px 0; font-size: 13px; }}
/* The legend lines space their entries apart with two blanks, as in the terminal. */
.legend p.words {{ white-space: pre-wrap; }}
.legend dt {{ float: left; clear: left; width: 7em; font-weight: 600; }}
.legend dd {{ margin-left: 7.5em; }}
ul.notes {{ font-size: 13px; margin: 4px 0; }}
pre {{ font-size: 13px; line-height: 1.3; }}
pre.diagram, pre.contention {{ background: #f7f7f2; border: 1px solid #d8d8d0; padding: 10px 12px;
  overflow-x: auto; width: max-content; max-width: 100%; }}
pre.message {{ background: #fff1ee; border-left: 4px solid #c1121f; padding: 8px 12px;
  white-space: pre-wrap; }}
pre.commands {{ background: #eef3fb; border-left: 4px solid #3b6fb6; padding: 6px 12px; }}
{WASTE_CSS}"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML page."""
    _check(data)
    return "\n".join(_html(data)) + "\n"


def _html(data: ReportData) -> Iterator[str]:
    anchors = {}
    for i, bug in enumerate(data.bugs):
        anchors.setdefault((bug.design, bug.property), _bug_anchor(i, bug))
    yield "<!DOCTYPE html>"
    yield '<html lang="en">'
    yield "<head>"
    yield '<meta charset="utf-8">'
    yield f"<title>{_e(data.title)}</title>"
    yield f"<style>\n{_css()}</style>"
    yield "</head>"
    yield "<body>"
    yield f"<h1>{_e(data.title)}</h1>"
    yield f'<p class="run">{_e(data.run)}</p>'
    yield from _html_table(data, anchors)
    yield '<div class="legend">'
    for line in data.legend:
        yield f'<p class="words">{_e(line)}</p>'
    yield f"<p>Costs: {_e(_costs_heading(data))}</p>"
    yield "<dl>"
    for columns, meaning in MEMORY_LEGEND:
        yield f"<dt>{_e(columns)}</dt><dd>{_e(' '.join(meaning))}</dd>"
    yield "</dl>"
    notes = _measure_notes(data)
    if notes:
        yield f"<p>{_e(STOPPED)}</p>"
        yield '<ul class="notes">'
        yield from (f"<li>{_e(note)}</li>" for note in notes)
        yield "</ul>"
    yield "</div>"
    surveys = [d for d in data.designs if d in data.surveys]
    if surveys:
        yield "<h2>Surveys</h2>"
        yield '<ul class="surveys">'
        for d in surveys:
            yield f"<li><b>{_e(d)}</b>: {_e(data.surveys[d])}</li>"
        yield "</ul>"
    if data.contention:
        yield "<h2>Contention</h2>"
        yield f'<pre class="contention">{_e(data.contention)}</pre>'
    if data.waste:
        yield from waste_html(data.waste)
    yield "<h2>Found bugs</h2>"
    if not data.bugs:
        yield "<p>None.</p>"
    for i, bug in enumerate(data.bugs):
        yield from _html_bug(_bug_anchor(i, bug), bug)
    yield "</body>"
    yield "</html>"


def _html_table(data: ReportData, anchors: dict[tuple[str, str], str]) -> Iterator[str]:
    yield '<table class="results">'
    yield "<thead>"
    yield (
        '<tr><th rowspan="2">design</th>'
        f'<th class="group" colspan="{len(data.properties)}">verdicts</th>'
        f'<th class="group" colspan="{len(MEMORY_COLUMNS)}">memory and reuse-delay</th></tr>'
    )
    headings = [f'<th title="{_e(p)}">{_e(data.short.get(p, p))}</th>' for p in data.properties] + [
        f"<th>{_e(c)}</th>" for c in MEMORY_COLUMNS
    ]
    yield "<tr>" + "".join(headings) + "</tr>"
    yield "</thead>"
    yield "<tbody>"
    for d in data.designs:
        cells = [f'<th scope="row">{_e(d)}</th>']
        for p in data.properties:
            word = _cell(data, d, p)
            text = _e(word)
            if (d, p) in anchors:
                text = f'<a href="#{anchors[d, p]}">{text}</a>'
            cells.append(f'<td class="v {_style(word)[0]}" title="{_e(f"{d}: {p}")}">{text}</td>')
        cells += _html_measure_cells(data, d)
        yield "<tr>" + "".join(cells) + "</tr>"
    yield "</tbody>"
    yield "</table>"


def _html_measure_cells(data: ReportData, design: str) -> list[str]:
    if design in data.measures_broken:
        return [
            f'<td class="m first broken" colspan="{len(MEMORY_COLUMNS)}">'
            f"<div>{_e(data.measures_broken[design])}</div></td>"
        ]
    values = (
        memory_cells(data.measures[design])
        if design in data.measures
        else [NOT_RUN] * len(MEMORY_COLUMNS)
    )
    return [f'<td class="m{" first" if i == 0 else ""}">{_e(v)}</td>' for i, v in enumerate(values)]


def _html_bug(anchor: str, bug: FoundBug) -> Iterator[str]:
    yield f'<section class="bug" id="{_e(anchor)}">'
    yield f"<h3>{_e(bug.design)}: {_e(bug.property)}</h3>"
    yield f'<pre class="message">{_e(bug.message)}</pre>'
    yield f'<pre class="diagram">{_e(bug.diagram)}</pre>'
    if bug.replay_file is None:
        yield "<p>Not saved as a replay file.</p>"
    else:
        run, other = _replay_commands(bug.replay_file)
        yield (
            f"<p>Replay file <code>{_e(bug.replay_file)}</code>: replay it on {_e(bug.design)},"
            " or on another design:</p>"
        )
        yield f'<pre class="commands">{_e(run)}\n{_e(other)}</pre>'
    yield "</section>"


# ---------------------------------------------------------------------------- Markdown

# What would start emphasis, code, a link, HTML, a table cell or an entity in running text;
# "->" and "&mm->context.lock" start none of them and stay as they are, to be read in a mail.
_MD_SPECIAL = re.compile(r"([\\`*~\[\]<|]|&(?=#?\w+;))")
# An underscore inside a word (HYPOTHESIS_PROFILE) is no emphasis: only the others are escaped.
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# What would make a line a heading, a quote, a list item or a rule.
_MD_LINE_START = re.compile(r"^(#|>|[-+=]|\d+[.)])")


def _md(text: str) -> str:
    """text as Markdown that shows it as it is, on one line."""
    text = " ".join(text.splitlines())
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MD_UNDERSCORE.sub(r"\\_", text)


def _md_para(text: str) -> str:
    """text as a paragraph of its own."""
    return _MD_LINE_START.sub(r"\\\1", _md(text))


def _md_code(text: str) -> str:
    """An inline code span that holds text whatever backticks it has."""
    text = " ".join(text.splitlines())
    ticks = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _md_block(text: str, info: str = "text") -> list[str]:
    """A fenced code block: a fence longer than any run of backticks inside."""
    fence = "`" * max(3, max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    return [f"{fence}{info}", *text.splitlines(), fence]


def _md_word(word: str) -> str:
    return f"**{_md(word)}**" if word in LOUD else _md(word)


def render_markdown(data: ReportData) -> str:
    """The report as Markdown, with the same content as the HTML, readable as plain text too."""
    _check(data)
    lines = [f"# {_md(data.title)}", "", _md_para(data.run), ""]
    lines += _md_table(data)
    lines.append("")
    for line in data.legend:
        lines.append(f"- {_md(line)}")
    lines += ["", f"Costs: {_md(_costs_heading(data))}", ""]
    for columns, meaning in MEMORY_LEGEND:
        lines.append(f"- **{_md(columns)}**: {_md(' '.join(meaning))}")
    notes = _measure_notes(data)
    if notes:
        lines += ["", _md_para(STOPPED), ""]
        lines += [f"- {_md(note)}" for note in notes]
    surveys = [d for d in data.designs if d in data.surveys]
    if surveys:
        lines += ["", "## Surveys", ""]
        lines += [f"- **{_md(d)}**: {_md(data.surveys[d])}" for d in surveys]
    if data.contention:
        lines += ["", "## Contention", "", *_md_block(data.contention)]
    if data.waste:
        lines += ["", *waste_markdown(data.waste)]
    lines += ["", "## Found bugs", ""]
    if not data.bugs:
        lines += ["None.", ""]
    for bug in data.bugs:
        lines += [f"### {_md(bug.design)}: {_md(bug.property)}", ""]
        lines += [*_md_block(bug.message), "", *_md_block(bug.diagram), ""]
        if bug.replay_file is None:
            lines += ["Not saved as a replay file.", ""]
        else:
            run, other = _replay_commands(bug.replay_file)
            lines += [
                f"Replay file {_md_code(bug.replay_file)}: replay it on {_md(bug.design)},"
                " or on another design:",
                "",
                *_md_block(f"{run}\n{other}", "sh"),
                "",
            ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_table(data: ReportData) -> list[str]:
    """The pipe table, its columns padded so that it also reads as plain text."""
    header = ["design", *(_md(data.short.get(p, p)) for p in data.properties), *MEMORY_COLUMNS]
    rows = []
    for d in data.designs:
        verdicts = [_md_word(_cell(data, d, p)) for p in data.properties]
        if d in data.measures:
            costs = memory_cells(data.measures[d])
        elif d in data.measures_broken:
            # The reason is too long for a cell: the notes under the table give it.
            costs = ["not measured"] + [NOT_RUN] * (len(MEMORY_COLUMNS) - 1)
        else:
            costs = [NOT_RUN] * len(MEMORY_COLUMNS)
        # Figures, "-" and a trailing "*": a lone "*" in a cell emphasizes nothing, so the
        # figures stay unescaped and line up as in the terminal.
        rows.append([_md(d), *verdicts, *costs])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    first_cost = 1 + len(data.properties)
    rule = [
        ("-" * (w - 1) + ":") if i >= first_cost else (":" + "-" * (w - 1))
        for i, w in enumerate(widths)
    ]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if i >= first_cost else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    return [line(header), line(rule), *(line(r) for r in rows)]
