"""The report (stateful/report.py): well-formed, faithful to its data, the same bytes every time,
and readable as a browser draws it."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from attrs import define, field

from designs.registry import load_designs
from stateful.measures import (
    MEMORY_COLUMNS,
    WASTE_WORKLOADS,
    Measures,
    WasteSeries,
    measure,
    measure_wastes,
    memory_cells,
    render_contention,
    render_waste,
)
from stateful.measures.plot import AXES_FACE, colour_of
from stateful.report import CELL_STYLES, FoundBug, ReportData, render_html, write_report

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT = ROOT / "artifacts" / "report-screenshot.png"
PLOTS_ARTIFACT = ROOT / "artifacts" / "report-plots-screenshot.png"
WINDOW = (1280, 1600)
# Tall enough for the whole page, plots included: a screenshot shows the window only.
TALL_WINDOW = (1280, 6000)
WASTE_PLOTTED = ["upstream-6.4", "no-readd", "full-page-6.8"]
CHROMIUM_TIMEOUT = 120  # seconds; a first start on a loaded machine takes a few

PROPERTIES = ["double-alloc", "use-after-free", "deadlock", "lockdep", "early-reuse"]
SHORT = {
    "double-alloc": "dbl-alloc",
    "use-after-free": "uaf",
    "deadlock": "deadlock",
    "lockdep": "lockdep",
    "early-reuse": "early-reuse",
}
BROKEN = "not measured: RuntimeError: hook page_table_alloc crashed: <no table> & no page"
# The end of hugh-hh's deadlock as the machine prints it: every character HTML must escape.
DIAGRAM = """\
CPU0                                    CPU1
----                                    ----
pte_free_defer(mm1, P0.hi)
  spin_lock_bh(&mm1->context.lock)
  call_rcu(P0->rcu_head, pte_free_now1)
                          ---- grace period 1 ends ----
<softirq>
rcu callback
  pte_free_now1(P0->rcu_head)
  spin_lock_bh(&mm1->context.lock)
  <-- deadlock"""
MESSAGE = """\
rcu: INFO: rcu_sched self-detected stall on CPU0: spin_lock_bh(&mm1->context.lock)
  spins forever: CPU0/softirq:rcu_core interrupted CPU0/task holding it <"quoted">"""
REPLAY = "replays/hugh-hh--deadlock.json"


@pytest.fixture(scope="module")
def upstream() -> Measures:
    return measure(load_designs()["upstream-6.4"])  # about a second


@pytest.fixture(scope="module")
def waste() -> list[WasteSeries]:
    designs = load_designs()
    return measure_wastes({d: designs[d] for d in WASTE_PLOTTED})  # under a second


@pytest.fixture
def data(upstream: Measures, waste: list[WasteSeries]) -> ReportData:
    return ReportData(
        title="pgfrag: s390 2K page-table fragments, designs x properties",
        run="pytest -n 0 tests/test_report.py; HYPOTHESIS_PROFILE=default; pgfrag 0.1.0",
        designs=["hugh-hh", "upstream-6.4", "broken-plugin"],
        properties=PROPERTIES,
        short=SHORT,
        results={
            ("hugh-hh", "double-alloc"): "held",
            ("hugh-hh", "use-after-free"): "MISSED",
            ("hugh-hh", "deadlock"): "FOUND",
            ("hugh-hh", "lockdep"): "FOUND",
            ("upstream-6.4", "double-alloc"): "held",
            ("upstream-6.4", "use-after-free"): "held",
            ("upstream-6.4", "deadlock"): "held",
            ("upstream-6.4", "lockdep"): "held",
            ("upstream-6.4", "early-reuse"): "n/a",
            ("broken-plugin", "double-alloc"): "ERROR",
            ("broken-plugin", "deadlock"): "NEW BUG",
        },
        legend=[
            "FOUND: known bug found  held: nothing found  NEW BUG: found, not in `known`",
            "MISSED: known, not found  ERROR: crashed  n/a: not applicable  -: not run",
        ],
        surveys={"hugh-hh": "4000 runs, 3862 drained clean; reports: deadlock 97, lockdep 41"},
        measures={"upstream-6.4": upstream},
        measures_broken={"broken-plugin": BROKEN},
        contention=render_contention({"upstream-6.4": upstream}),
        bugs=[FoundBug("hugh-hh", "deadlock", MESSAGE, DIAGRAM, REPLAY)],
        waste=waste,
    )


@define
class Page(HTMLParser):
    """What a reader sees of the page: the table's rows and each <pre>'s text, by class."""

    rows: list[list[str]] = field(factory=list)
    pres: dict[str, list[str]] = field(factory=dict)
    headings: list[str] = field(factory=list)
    # workload -> the designs whose line its plot's <svg> holds, in order
    plots: dict[str, list[str]] = field(factory=dict)
    problems: list[str] = field(factory=list)
    _open: list[str] = field(factory=list)
    _text: list[str] | None = None
    _pre: str | None = None
    _plot: str | None = None  # the workload of the plot's <figure> we are in
    _svg: bool = False  # inside that figure's <svg>

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input"})

    def __attrs_post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        self._open.append(tag)
        attr = dict(attrs)
        if tag == "figure" and "waste-plot" in (attr.get("class") or "").split():
            self._plot = attr.get("data-workload") or ""
            self.plots[self._plot] = []
        elif tag == "svg" and self._plot is not None:
            self._svg = True
        elif tag == "g" and self._svg and self._plot is not None:
            line = attr.get("id") or ""
            if line.startswith(f"waste-{self._plot}-"):
                self.plots[self._plot].append(line.removeprefix(f"waste-{self._plot}-"))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th", "h1", "h2", "h3"):
            self._text = []
        elif tag == "pre":
            self._pre = dict(attrs).get("class") or ""
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self._open or self._open[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self._open[-1] if self._open else ''}>")
            return
        self._open.pop()
        if tag == "figure":
            self._plot = None
        elif tag == "svg":
            self._svg = False
        text = "".join(self._text or [])
        if tag in ("td", "th") and self.rows:
            self.rows[-1].append(text)
        elif tag in ("h1", "h2", "h3"):
            self.headings.append(text)
        elif tag == "pre" and self._pre is not None:
            self.pres.setdefault(self._pre, []).append(text)
        if tag in ("td", "th", "h1", "h2", "h3", "pre"):
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert not parser.problems, parser.problems
    # Chromium's DOM dump has <html>, <head>, <body> implied or closed: none left open.
    assert parser._open == [], f"unclosed: {parser._open}"
    return parser


def expected_rows(data: ReportData) -> dict[str, list[str]]:
    """design -> its row as a reader reads it: verdict words, then the cost cells."""
    rows = {}
    for d in data.designs:
        words = [data.results.get((d, p), "-") for p in data.properties]
        if d in data.measures:
            costs = memory_cells(data.measures[d])
        elif d in data.measures_broken:
            costs = [data.measures_broken[d]]  # one cell across the cost columns
        else:
            costs = ["-"] * len(MEMORY_COLUMNS)
        rows[d] = [d, *words, *costs]
    return rows


def check_page(page: Page, data: ReportData) -> None:
    by_design = {row[0]: row for row in page.rows if row}
    for design, row in expected_rows(data).items():
        assert by_design[design] == row
    # Two heading rows: the groups, then the columns under "design", which spans both.
    assert page.rows[0] == ["design", "verdicts", "memory and reuse-delay"]
    assert page.rows[1] == [*(SHORT[p] for p in PROPERTIES), *MEMORY_COLUMNS]
    # The escaped diagram and message come back as the machine printed them.
    assert page.pres["diagram"] == [DIAGRAM]
    assert page.pres["message"] == [MESSAGE]
    assert page.pres["commands"] == [
        f"pytest --replay {REPLAY}\npytest --replay {REPLAY} --design OTHER"
    ]
    assert "hugh-hh: deadlock" in page.headings
    # One plot per workload, each an inline <svg> with one line per design.
    assert page.plots == {w: WASTE_PLOTTED for w in WASTE_WORKLOADS}
    assert "Memory waste" in page.headings


def test_html_is_well_formed_and_says_what_the_data_says(
    data: ReportData, upstream: Measures, tmp_path: Path
) -> None:
    html_path, md_path = write_report(tmp_path / "report.html", data)
    assert (html_path, md_path) == (tmp_path / "report.html", tmp_path / "report.md")
    page = html_path.read_text(encoding="utf-8")
    check_page(parse(page), data)
    # Escaped, not dropped or taken for markup.
    assert "&lt;softirq&gt;" in page and "<softirq>" not in page
    assert "&amp;mm1-&gt;context.lock" in page and "&lt;-- deadlock" in page
    assert "&lt;no table&gt; &amp; no page" in page
    # Self-contained: nothing fetched, nothing run.
    for outside in ("<script", "<link", "src=", "http://", "https://", "@import"):
        assert outside not in page
    # The FOUND cells lead to the bug's section.
    assert page.count('href="#bug-1-hugh-hh-deadlock"') == 1
    assert 'id="bug-1-hugh-hh-deadlock"' in page
    assert data.surveys["hugh-hh"] in page
    assert "upstream-6.4: pte_free_defer: not offered" in page  # the notes of the costs
    assert "&amp;mm-&gt;context.lock" in page  # the contention table
    for word in ("FOUND", "held", "NEW BUG", "MISSED", "ERROR", "n/a"):
        assert f'class="v {CELL_STYLES[word][0]}"' in page


def test_markdown_has_the_table_the_diagram_and_the_replay(
    data: ReportData, tmp_path: Path
) -> None:
    _, md_path = write_report(tmp_path / "report.html", data)
    md = md_path.read_text(encoding="utf-8")
    lines = md.splitlines()
    table = [line for line in lines if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == ["design", *(SHORT[p] for p in PROPERTIES), *MEMORY_COLUMNS]
    assert set(table[1]) <= {"|", "-", ":", " "}
    assert len({len(line) for line in table}) == 1  # padded: it reads as a table in a mail too
    cells = {
        row[0]: row for row in ([c.strip() for c in t.strip("|").split("|")] for t in table[2:])
    }
    assert cells["hugh-hh"][1:6] == ["held", "**MISSED**", "**FOUND**", "**FOUND**", "-"]
    assert cells["upstream-6.4"][6:] == memory_cells(data.measures["upstream-6.4"])
    assert cells["broken-plugin"][1:4] == ["**ERROR**", "-", "**NEW BUG**"]
    assert cells["broken-plugin"][6] == "not measured"
    # The reason it was not measured, escaped: Markdown would take <no table> for HTML.
    assert (
        r"- broken-plugin: not measured: RuntimeError: hook page_table_alloc crashed:"
        r" \<no table> & no page"
    ) in lines
    assert f"```text\n{DIAGRAM}\n```" in md
    assert f"```text\n{MESSAGE}\n```" in md
    assert "### hugh-hh: deadlock" in lines
    assert f"pytest --replay {REPLAY}\npytest --replay {REPLAY} --design OTHER\n```" in md
    assert "- **hugh-hh**: " + data.surveys["hugh-hh"] in lines
    # The memory waste as the terminal prints it: the plots are the HTML's.
    assert "## Memory waste" in lines
    assert render_waste(data.waste) in md
    # The legend is shown as written: `known` with its backticks, not as code.
    assert r"NEW BUG: found, not in \`known\`" in md


def test_the_same_data_gives_the_same_bytes(data: ReportData, tmp_path: Path) -> None:
    first = [p.read_bytes() for p in write_report(tmp_path / "a" / "report.html", data)]
    again = [p.read_bytes() for p in write_report(tmp_path / "a" / "report.html", data)]
    elsewhere = [p.read_bytes() for p in write_report(tmp_path / "b" / "other.html", data)]
    assert first == again == elsewhere


def test_a_bug_without_a_replay_file_and_a_design_without_anything(
    data: ReportData, tmp_path: Path
) -> None:
    data.designs.append("new-design")
    data.bugs.append(FoundBug("new-design", "lockdep", "WARNING: possible deadlock", "x", None))
    page = parse(render_html(data))
    row = next(r for r in page.rows if r and r[0] == "new-design")
    assert row[1:] == ["-"] * (len(PROPERTIES) + len(MEMORY_COLUMNS))
    assert "new-design: lockdep" in page.headings


def test_data_the_table_would_drop_is_refused(data: ReportData, tmp_path: Path) -> None:
    data.results[("gerald", "deadlock")] = "FOUND"
    data.surveys["gerald"] = "1 run"
    with pytest.raises(ValueError, match="result for 'gerald'/'deadlock'.*survey of 'gerald'"):
        write_report(tmp_path / "report.html", data)
    assert not (tmp_path / "report.html").exists()
    with pytest.raises(ValueError, match="other than .md"):
        write_report(tmp_path / "report.md", data)


# ---------------------------------------------------------------------------- in a browser


def chromium(
    *args: str, profile: Path, window: tuple[int, int] = WINDOW
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium not installed: apt-get install chromium (the CI installs it)")
    command = [
        exe,
        "--headless",
        "--no-sandbox",  # as root in a container there is no sandbox to start
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        f"--window-size={window[0]},{window[1]}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT)
    assert done.returncode == 0, f"{' '.join(command)}: exit {done.returncode}\n{done.stderr}"
    return done


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk, each one's CRC checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
    chunks, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r} chunk"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def png_rows(png: bytes) -> tuple[int, int, int, list[bytes]]:
    """width, height, bytes per pixel and the pixel rows of an 8-bit RGB(A) non-interlaced PNG."""
    chunks = png_chunks(png)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) in ((8, 2, 0), (8, 6, 0)), (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * bpp
    assert len(raw) == height * (stride + 1)
    rows, prev = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]
        if kind == 0:
            row = line
        elif kind == 2:
            row = _add(line, prev)
        else:
            row = _unfilter(kind, line, prev, bpp)
        rows.append(row)
        prev = row
    return width, height, bpp, rows


def _add(a: bytes, b: bytes) -> bytes:
    """Bytewise (a + b) mod 256 on whole rows at once: the Up filter, which a screenshot uses on
    nearly every row, at the speed of big-int arithmetic instead of a loop per byte. The low 7
    bits of each byte add without reaching the next byte; the top bit is their carry xor both."""
    n = len(a)
    low, high = int.from_bytes(b"\x7f" * n, "big"), int.from_bytes(b"\x80" * n, "big")
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def _unfilter(kind: int, line: bytes, prev: bytes, bpp: int) -> bytes:
    """The Sub, Average and Paeth filters (PNG spec 9.2), one byte at a time."""
    row = bytearray(line)
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up = prev[i]
        upleft = prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            pred = left
        elif kind == 3:
            pred = (left + up) // 2
        elif kind == 4:
            p = left + up - upleft
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else upleft
        else:
            raise AssertionError(f"PNG filter type {kind} does not exist")
        row[i] = (row[i] + pred) & 0xFF
    return bytes(row)


def has_pixel(rows: list[bytes], bpp: int, rgb: bytes) -> bool:
    for row in rows:
        at = row.find(rgb)
        while at != -1:
            if at % bpp == 0:  # a pixel, not the tail of one and the head of the next
                return True
            at = row.find(rgb, at + 1)
    return False


def rgb(hex_colour: str) -> bytes:
    return bytes.fromhex(hex_colour.lstrip("#"))


def plot_boxes(rows: list[bytes], bpp: int) -> list[tuple[int, int, int, int]]:
    """(top, bottom, left, right) of each run of rows holding the plots' axes colour; the
    plot's horizontal reference lines cross the axes, so runs a few rows apart are one box."""
    face = rgb(AXES_FACE)
    boxes: list[list[int]] = []
    for y, row in enumerate(rows):
        xs = [at // bpp for at in _finds(row, face) if at % bpp == 0]
        if not xs:
            continue
        if boxes and y - boxes[-1][1] <= 8:
            box = boxes[-1]
            box[1], box[2], box[3] = y, min(box[2], xs[0]), max(box[3], xs[-1])
        else:
            boxes.append([y, y, xs[0], xs[-1]])
    return [(a, b, c, d) for a, b, c, d in boxes]


def _finds(row: bytes, what: bytes) -> list[int]:
    found, at = [], row.find(what)
    while at != -1:
        found.append(at)
        at = row.find(what, at + 1)
    return found


def pixels_near(
    rows: list[bytes], bpp: int, box: tuple[int, int, int, int], colour: bytes, within: int
) -> int:
    top, bottom, left, right = box
    count = 0
    for row in rows[top : bottom + 1]:
        for x in range(left, right + 1):
            pixel = row[x * bpp : x * bpp + 3]
            if all(abs(pixel[i] - colour[i]) <= within for i in range(3)):
                count += 1
    return count


def test_chromium_draws_the_report(data: ReportData, tmp_path: Path) -> None:
    html_path, _ = write_report(tmp_path / "report.html", data)
    url = html_path.resolve().as_uri()
    shot = tmp_path / "screenshot.png"
    chromium(f"--screenshot={shot}", url, profile=tmp_path / "profile-shot")
    png = shot.read_bytes()
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_bytes(png)

    width, height, bpp, rows = png_rows(png)
    assert (width, height) == WINDOW
    first = rows[0][:bpp] * width
    assert any(row != first for row in rows), "the screenshot is one colour: nothing was drawn"
    # The cells are drawn in their colours: the CSS was applied, the table is on screen.
    for word in ("FOUND", "held", "NEW BUG", "MISSED", "ERROR"):
        assert has_pixel(rows, bpp, rgb(CELL_STYLES[word][1])), f"no {word} cell colour drawn"

    dom = chromium("--dump-dom", url, profile=tmp_path / "profile-dom").stdout
    check_page(parse(dom), data)

    # The plots, further down: a window as tall as the page. Each plot's box (its axes
    # colour) is found, and each design's line is drawn in it, in the design's colour.
    tall = tmp_path / "tall.png"
    chromium(f"--screenshot={tall}", url, profile=tmp_path / "profile-tall", window=TALL_WINDOW)
    PLOTS_ARTIFACT.write_bytes(tall.read_bytes())
    _, _, bpp, rows = png_rows(tall.read_bytes())
    boxes = plot_boxes(rows, bpp)
    assert len(boxes) == len(WASTE_WORKLOADS), boxes
    designs = [s.design for s in data.waste]
    for box in boxes:
        assert box[1] - box[0] > 100 and box[3] - box[2] > 300, f"a plot box of {box}"
        for design in WASTE_PLOTTED:
            drawn = pixels_near(rows, bpp, box, rgb(colour_of(design, designs)), 24)
            assert drawn > 20, f"{design}'s line is not drawn in the plot at {box}"


def test_report_option_writes_what_the_run_found(tmp_path: Path) -> None:
    """`--report` end to end: a short run that finds hugh-v1's list corruption."""
    root = Path(__file__).resolve().parent.parent
    report = tmp_path / "report.html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "0",
            str(root / "tests" / "test_verdicts.py"),
            "--design",
            "hugh-v1",
            "--design",
            "upstream-6.4",
            "--property",
            "list-corruption",
            "--report",
            str(report),
            "--replay-dir",
            str(tmp_path / "replays"),
        ],
        cwd=root,
        env=dict(os.environ, HYPOTHESIS_PROFILE="smoke"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"report written to {report}" in done.stdout
    markdown = report.with_suffix(".md").read_text()
    assert "**FOUND**" in markdown and "| upstream-6.4 |" in markdown
    saved = tmp_path / "replays" / "hugh-v1--list-corruption.json"
    assert f"pytest --replay {saved}" in markdown
    assert "list_add corruption" in markdown or "list_del corruption" in markdown


def test_report_option_refuses_a_markdown_path_before_running(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "--report", str(tmp_path / "r.md")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert "give the HTML file" in done.stderr
    assert not (tmp_path / "r.md").exists()
