"""The memory-waste section of the report: per workload, its plot (inline SVG) and its table.

The HTML gets the plot; the Markdown, like the terminal, the table.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence

from stateful.measures.plot import AXES_FACE, waste_svg
from stateful.measures.waste import WasteSeries
from stateful.measures.waste_render import (
    WASTE_LEGEND,
    render_waste,
    render_workload,
    workload_heading,
)

WASTE_CSS = f"""\
figure.waste-plot {{ margin: 10px 0 18px; }}
figure.waste-plot svg {{ display: block; width: 100%; max-width: 900px; height: auto;
  border: 1px solid #d8d8d0; background: #fff; }}
figure.waste-plot figcaption {{ font-size: 13px; color: #444; margin-top: 4px; }}
/* The plot's axes are {AXES_FACE}: the report's test finds the plot by it. */
pre.waste {{ background: #f7f7f2; border: 1px solid #d8d8d0; padding: 10px 12px;
  overflow-x: auto; width: max-content; max-width: 100%; }}
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _workloads(series: Sequence[WasteSeries]) -> list[str]:
    return list(dict.fromkeys(s.workload for s in series))


def waste_html(series: Sequence[WasteSeries]) -> Iterator[str]:
    yield '<h2 id="memory-waste">Memory waste</h2>'
    for line in WASTE_LEGEND:
        yield f"<p>{_e(line)}</p>"
    for workload in _workloads(series):
        rows = [s for s in series if s.workload == workload]
        yield (
            f'<figure class="waste-plot" id="waste-{_e(workload)}" data-workload="{_e(workload)}">'
        )
        yield waste_svg(workload, rows)
        yield f"<figcaption>{_e(workload_heading(workload))}</figcaption>"
        yield "</figure>"
        yield f'<pre class="waste">{_e(render_workload(rows))}</pre>'


def waste_markdown(series: Sequence[WasteSeries]) -> list[str]:
    return ["## Memory waste", "", "```text", render_waste(series), "```"]
