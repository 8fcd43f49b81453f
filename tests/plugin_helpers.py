"""Build a throw-away installed distribution that registers a design through
the `pgfrag.designs` entry-point group, the way a plugin in another
repository would after `pip install`: a package plus its .dist-info."""

from __future__ import annotations

import textwrap
from pathlib import Path

GOOD_PLUGIN = '''
"""A design living outside pgfrag: upstream-6.4 under another name."""
from designs.upstream_6_4 import Upstream64


class OutOfTreeUpstream(Upstream64):
    name = "out-of-tree"
    title = "upstream-6.4, registered through an entry point"
    source = "tests/plugin_helpers.py"
    known = {}
'''

MISSING_HOOK_PLUGIN = """
from designs.base import Design
from stateful.kernel import api as k


class Broken(Design):
    name = "broken-plugin"
    title = "forgot tlb_remove_table"
    source = "tests/plugin_helpers.py"

    def init_context(self, mm):
        yield from ()

    def destroy_context(self, mm):
        yield from ()

    def page_table_alloc(self, mm):
        page = yield from k.alloc_page()
        return k.table_of(page, None)

    def page_table_free(self, mm, table):
        yield from k.free_page(table.page)

    def page_table_free_rcu(self, tlb, table):
        yield from k.tlb_remove_table(tlb, k.tagged(table.page, 0))

    def tlb_flush_mm_lazy(self, mm):
        yield from ()
"""

CRASHING_PLUGIN = """
from designs.upstream_6_4 import Upstream64


class Crashing(Upstream64):
    name = "crashing"
    title = "a hook with a plain Python bug"
    source = "tests/plugin_helpers.py"

    def tlb_flush_mm_lazy(self, mm):
        raise RuntimeError("bug in the plugin")
        yield
"""

BAD_KNOWN_PLUGIN = """
from designs.upstream_6_4 import Upstream64


class BadKnown(Upstream64):
    name = "bad-known"
    title = "names a property that does not exist"
    source = "tests/plugin_helpers.py"
    known = {"use-after-fre": "typo in the property name"}
"""


def install_plugin(root: Path, package: str, source: str, target: str) -> Path:
    """Write `package` and a dist-info declaring `target` in pgfrag.designs; return root."""
    pkg = root / package
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(source))
    dist = root / f"{package}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[pgfrag.designs]\n{target}\n")
    return root
