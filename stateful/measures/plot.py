"""The memory-waste plot of one workload, as SVG text to inline in the HTML report.

matplotlib's SVG backend draws it, without pyplot (no global figure state).
The same series give the same bytes: `svg.hashsalt` fixes the ids matplotlib
would otherwise draw at random, and the metadata carries no date and no
version. Each design's line is the group `waste-<workload>-<design>`, so the
report's reader (and its test) can find it in the DOM.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from stateful.measures.waste import WASTE_DESIGNS, WasteSeries

# The axes' own colour: the report's test finds the plot's box by it in a screenshot.
AXES_FACE = "#fbfaf2"
# One colour per design, fixed, so a design has the same colour in every plot.
PALETTE = (
    "#1f77b4",
    "#9467bd",
    "#ff7f0e",
    "#8c564b",
    "#e377c2",
    "#d62728",
    "#2ca02c",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
STYLES = ("-", "--", "-.", ":")
RC = {
    "svg.hashsalt": "pgfrag",
    "svg.fonttype": "none",  # text as <text>: small, and read by the browser's fonts
    "font.size": 9,
    "font.family": "sans-serif",
}


def colour_of(design: str, order: Sequence[str]) -> str:
    known = [*WASTE_DESIGNS, *(d for d in order if d not in WASTE_DESIGNS)]
    return PALETTE[known.index(design) % len(PALETTE)]


def line_id(workload: str, design: str) -> str:
    return f"waste-{workload}-{design}"


def waste_svg(workload: str, series: Sequence[WasteSeries], standalone: bool = False) -> str:
    """One line per design: pgtable pages per live 2K table after each operation.
    standalone: an .svg file of its own (namespaces kept), not for inlining."""
    designs = [s.design for s in series]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7.5, 3.4))
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        ax.set_facecolor(AXES_FACE)
        ax.axhline(1.0, color="#aaaaaa", linewidth=2.5, alpha=0.5, label="1.0: one 4K page a table")
        ax.axhline(0.5, color="#cccccc", linewidth=2.5, alpha=0.5, label="0.5: two tables a page")
        # Designs with the same figures draw the same line: the dashes keep each seen.
        for i, s in enumerate(series):
            xs = [x for x, r in enumerate(s.ratios, 1) if r is not None]
            ys = [r for r in s.ratios if r is not None]
            mean = "-" if s.mean is None else f"{s.mean:.3f}"
            (line,) = ax.plot(
                xs,
                ys,
                label=f"{s.design} (mean {mean}{', stopped' if s.stop else ''})",
                color=colour_of(s.design, designs),
                linestyle=STYLES[i % len(STYLES)],
                linewidth=1.2,
            )
            line.set_gid(line_id(workload, s.design))
        ax.set_xlabel("operation")
        ax.set_ylabel("pgtable pages per live 2K table")
        ax.set_title(workload, loc="left", fontweight="bold")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return _standalone(out.getvalue()) if standalone else _inline(out.getvalue())


def _standalone(svg: str) -> str:
    """A file of its own keeps its namespaces; the metadata goes, as inline."""
    return re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)


def _inline(svg: str) -> str:
    """Drop what only a standalone .svg file needs: the XML declaration, the
    DOCTYPE, the namespace declarations (HTML's parser puts <svg> in its
    namespace by itself) and the RDF metadata, whose URLs name vocabularies."""
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"^<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
    svg = re.sub(r' xmlns(:\w+)?="[^"]*"', "", svg)
    if "http" in svg:
        raise ValueError("the plot's SVG names a URL: the report must fetch nothing")
    return svg.strip()
