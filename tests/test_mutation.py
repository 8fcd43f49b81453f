"""Mutation analysis (stateful/mutants/): the operators, the judge, plugins, bad input.

Cheap: small bounds, or a setup that fixes the scenario's first operations
(the Explorer's `setup`), so that each judgement is a fraction of a second
to a few seconds. Every verdict asserted here is the machine's: a mutant is
built from the changed source and searched; nothing is looked up.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_helpers import GOOD_PLUGIN, install_plugin

from designs.registry import load_designs
from stateful.exhaustive import parse_bound
from stateful.exhaustive.result import Cost
from stateful.exhaustive.search import explore
from stateful.mutants import (
    EQUIVALENT,
    INVALID,
    KILLED,
    SURVIVED,
    SourceError,
    derive,
    judge,
    methods,
    source_hash,
)
from stateful.mutants.baseline import search
from stateful.mutants.build import counted_class, mutant_class
from stateful.mutants.explore import Borrowing, EndStates
from stateful.mutants.judge import Verdict, changed_method
from stateful.mutants.resolve import MutantError, resolve
from stateful.mutants.scenario import DesignPasses
from stateful.mutants.table import headline, render_text, to_json
from stateful.replay_file import check_replay, load_replay

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = load_designs()
UPSTREAM = DESIGNS["upstream-6.4"]
SMALL = parse_bound("S=2,C=0,P=0,I=1")
UPSTREAM_FILE = ROOT / "designs" / "upstream_6_4.py"


def _line(text: str, after: str = "", path: Path = UPSTREAM_FILE) -> int:
    """The line of path (upstream_6_4.py) holding text (after the line holding `after`)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines[start:], start) if text in line) + 1


def _mutant(design: str, method: str, line: int, operator: str):  # type: ignore[no-untyped-def]
    mutant_id = f"{design}:{method}:{line}:{operator}"
    found = [m for m in derive(DESIGNS[design]) if m.id == mutant_id]
    assert found, f"no mutant {mutant_id}"
    return found[0]


def _judge(design: str, mutant, bound=SMALL, **focus):  # type: ignore[no-untyped-def]
    cls = DESIGNS[design]
    base = search(cls, bound, **focus)
    return judge(cls, mutant, bound, base, None, source_hash(cls), **focus)


# --- the operators, on upstream-6.4 -----------------------------------------


def test_ids_are_stable_and_unique() -> None:
    first = [m.id for m in derive(UPSTREAM)]
    assert first == [m.id for m in derive(UPSTREAM)]
    assert len(first) == len(set(first))
    assert all(i.startswith("upstream-6.4:") and i.count(":") == 3 for i in first)


def test_delete_step_reads_where_the_result_is_used() -> None:
    line = _line("mask = yield from k.atomic_xor_bits(page, PP << (bit + 24))")
    m = _mutant("upstream-6.4", "page_table_free", line, "delete-step")
    assert m.shown == "mask = (yield from k.atomic_read(page))"
    # Nothing clears the temporary PP: the page is never freed.
    v = _judge("upstream-6.4", m)
    assert (v.kind, v.property) == (KILLED, "leak"), v
    assert "kmemleak" in v.detail and "leak" in v.diagram


def test_delete_step_of_a_statement() -> None:
    line = _line("yield from k.free_page(page)", after="def page_table_release")
    m = _mutant("upstream-6.4", "page_table_release", line, "delete-step")
    assert m.shown == "(deleted)"
    assert _judge("upstream-6.4", m).property == "leak"


def test_lock_flavour_swaps_the_pair() -> None:
    line = _line("yield from k.spin_lock(mm.context.lock)")
    m = _mutant("upstream-6.4", "tlb_flush_mm_lazy", line, "lock-flavour")
    assert m.shown == (
        "yield from k.spin_lock_bh(mm.context.lock) ... "
        "yield from k.spin_unlock_bh(mm.context.lock)"
    )
    assert m.lines == (line, _line("yield from k.spin_unlock(mm.context.lock)"))


def test_list_swaps() -> None:
    line = _line("add = k.list_add_tail if tail else k.list_add")
    tail = _mutant("upstream-6.4", "free_list_step", line, "list_add_tail")
    assert tail.shown == "add = k.list_add_tail if tail else k.list_add_tail"
    head = _mutant("upstream-6.4", "free_list_step", line, "list_add")
    assert head.shown == "add = k.list_add if tail else k.list_add"
    line = _line("yield from k.list_del(page)", after="def free_list_step")
    m = _mutant("upstream-6.4", "free_list_step", line, "list_del_init")
    assert m.shown == "yield from k.list_del_init(page)"


def test_flip_bit_of_an_xor_mask_and_of_a_tested_mask() -> None:
    line = _line("mask = yield from k.atomic_xor_bits(page, (AA | PP) << (bit + 24))")
    m = _mutant("upstream-6.4", "page_table_free", line, "flip-bit0")
    assert m.shown.endswith("(AA | PP) << bit + 24 ^ 1 << 24))")
    v = _judge("upstream-6.4", m)  # the AA bit stays: AA and PP of one half
    assert (v.kind, v.property) == (KILLED, "bad-bits"), v
    line = _line("if mask & 0x03:", after="def free_list_step")
    tested = _mutant("upstream-6.4", "free_list_step", line, "flip-bit4")
    assert tested.shown == "if mask & (0x03 ^ 0x10):"


def test_drop_temp_bit_is_the_temporary_pp_and_is_killed_by_the_c2c_race() -> None:
    temps = [m for m in derive(UPSTREAM) if m.operator.startswith("drop-temp-bit")]
    assert [(m.method, m.operator) for m in temps] == [("page_table_free", "drop-temp-bit4")]
    (m,) = temps
    assert m.shown == (
        "mask = (yield from k.atomic_xor_bits(page, 1 << bit + 24)) ... "
        "mask = (yield from k.atomic_read(page))"
    )
    # The setup of pre-c2c-5.16's known race (its replay file's first three
    # operations, run atomically); every continuation by a page_table_free
    # (pte_free) within the bound is searched.
    setup = load_replay(ROOT / "replays" / "pre-c2c-5.16--use-after-free.json").steps[:3]
    bound = parse_bound("S=3,C=1,P=1,I=1")
    v = _judge("upstream-6.4", m, bound, setup=setup, operations=frozenset({"page_table_free"}))
    # The read that replaced the second xor, after the other half's
    # __tlb_remove_table saw 0 and freed the page: no preemption needed.
    assert (v.kind, v.property) == (KILLED, "use-after-free"), v
    assert "atomic_read(&P0->_refcount)" in v.detail and "<softirq>" in v.diagram


def test_negate_and_drop_condition() -> None:
    line = _line("if mask == 0:", after="def page_table_free(")
    negated = _mutant("upstream-6.4", "page_table_free", line, "negate")
    assert negated.shown == "if not mask == 0:"
    assert _judge("upstream-6.4", negated).property == "leak"
    dropped = _mutant("upstream-6.4", "page_table_free", line, "drop-condition")
    assert dropped.shown == "if True:"
    v = _judge("upstream-6.4", dropped)
    assert v.kind == KILLED, v


def test_swap_next() -> None:
    line = _line("yield from self.free_list_step(mm, page, mask, tail=False)")
    m = _mutant("upstream-6.4", "page_table_free", line, "swap-next")
    assert m.shown == (
        "yield from k.spin_unlock_bh(mm.context.lock); "
        "yield from self.free_list_step(mm, page, mask, tail=False)"
    )


def test_a_mutant_whose_lines_never_run_is_equivalent_without_a_search() -> None:
    # pgste=0 in the bound: the PGSTE branch never runs.
    line = _line("mask = yield from k.atomic_xor_bits(page, 0x03 << 24)", "def page_table_free(")
    v = _judge("upstream-6.4", _mutant("upstream-6.4", "page_table_free", line, "flip-bit4"))
    assert v.kind == EQUIVALENT and "never runs" in v.detail


def test_same_end_states_is_proved_equivalent() -> None:
    line = _line("yield from k.flush_mm_if_pending(mm)")
    m = _mutant("upstream-6.4", "tlb_flush_mm_lazy", line, "swap-next")
    v = _judge("upstream-6.4", m)
    assert v.kind == EQUIVALENT and "the same" in v.detail, v


def test_a_crashing_mutant_is_invalid_and_the_table_goes_on() -> None:
    full = DESIGNS["full-page-6.8"]
    crash = next(m for m in derive(full) if m.shown.startswith("yield from k.WARN_ON_ONCE(pgste"))
    v = _judge("full-page-6.8", crash)
    assert v.kind == INVALID and "UnboundLocalError" in v.detail, v
    text = render_text("full-page-6.8", [v], str(SMALL))
    assert "invalid" in text and "UnboundLocalError" in text
    assert json.loads(to_json("full-page-6.8", [v], str(SMALL), "x"))["invalid"] == 1


def test_the_score_is_not_rounded_up_to_a_goal() -> None:
    """global-lock's run: 139 killed of 155 counted is 89.7%, under a 90% goal."""

    def verdict(n: int, kind: str) -> Verdict:
        return Verdict(f"d:m:{n}:op", kind, "m", n, "op", "d.py:1", "a", "b")

    rows = [verdict(n, KILLED) for n in range(139)]
    rows += [verdict(n, SURVIVED) for n in range(139, 155)]
    assert "mutation score 89.7% = 139 killed / 155" in headline("d", rows, str(SMALL))


# --- a property the design reaches, in a scenario it passes ------------------

# hugh-hh's page_table_free (global-lock inherits it), and a bound where
# global-lock reaches its own known leak in 4 rule calls, in 2 s.
HUGH_HH_FILE = ROOT / "designs" / "hugh_hh.py"
LEAKY = parse_bound("S=3,C=1,P=0,I=0")


def test_the_design_passes_a_scenario_only_where_no_interleaving_breaks_it() -> None:
    cls = DESIGNS["global-lock"]
    own = explore(cls, LEAKY).result.found["leak"]
    passes = DesignPasses(cls, LEAKY)
    # Its own leak's rule calls: broken there.
    assert not passes("leak", own.steps, own.cost, own.in_drain)
    # One fault and the exit: every table freed, in the only interleaving.
    assert passes("leak", own.steps[:1], Cost(setup=1, calls=1), True)
    # The first was settled by replaying its calls; only the second searched.
    assert (passes.replays, passes.searches) == (2, 1)
    setup, operations = passes.scenario(own.steps, own.cost)
    assert setup == own.steps[: own.cost.setup] and operations


def test_a_property_the_design_reaches_kills_in_a_scenario_the_design_passes() -> None:
    """global-lock leaks, so reaching leak is no kill by itself; page_table_free's
    last free_page deleted leaks after one fault and the exit, where
    global-lock frees every page: killed by leak, with that scenario."""
    cls = DESIGNS["global-lock"]
    line = _line("yield from k.free_page(page)", "if mask == 0:", HUGH_HH_FILE)
    m = _mutant("global-lock", "page_table_free", line, "delete-step")
    base = search(cls, LEAKY)
    assert base.properties == {"leak"}
    v = judge(cls, m, LEAKY, base, None, "x")
    assert (v.kind, v.property, v.design_passes) == (KILLED, "leak", True), v
    assert len(v.steps) == 1 and v.steps[0].startswith("state.page_table_alloc(")
    assert "in no interleaving of this scenario" in v.detail
    assert "killed by leak (design passes)" in render_text("global-lock", [v], str(LEAKY))


def test_a_mutant_breaking_only_the_designs_own_scenarios_survives() -> None:
    """list_del_init for list_del in page_table_alloc: global-lock's own leak,
    and no leak anywhere the design has none."""
    cls = DESIGNS["global-lock"]
    line = _line("yield from k.list_del(page)", "def page_table_alloc(", HUGH_HH_FILE)
    m = _mutant("global-lock", "page_table_alloc", line, "list_del_init")
    v = judge(cls, m, LEAKY, search(cls, LEAKY), None, "x")
    assert v.kind in (SURVIVED, EQUIVALENT), v


def test_taking_states_is_sound_where_the_design_reaches_a_property() -> None:
    """global-lock's page_table_free mutants (each delete-step, and the first of
    each other operator that runs), judged with and without what is taken
    from the design's search: the same verdicts and counterexamples, kills
    in a scenario the design passes included."""
    cls = DESIGNS["global-lock"]
    base = search(cls, LEAKY)
    kinds = set()
    seen: set[str] = set()
    for m in derive(cls):
        kind = m.operator.rstrip("0123456789")
        if m.method != "page_table_free" or not base.ran_any(m.path, m.lines) or kind in seen:
            continue
        if kind != "delete-step":
            seen.add(kind)
        fast = judge(cls, m, LEAKY, base, None, "x")
        slow = judge(cls, m, LEAKY, base, None, "x", reuse=False)
        assert (fast.kind, fast.property, fast.design_passes, fast.detail) == (
            slow.kind,
            slow.property,
            slow.design_passes,
            slow.detail,
        ), m.id
        assert fast.cost == slow.cost and fast.steps == slow.steps, m.id
        kinds.add((fast.kind, fast.design_passes))
    assert (KILLED, True) in kinds and (KILLED, False) in kinds


# --- the machinery ------------------------------------------------------------


def test_counting_the_lines_changes_no_state() -> None:
    plain = EndStates(UPSTREAM, parse_bound("S=2,C=1,P=0,I=1"))
    result = plain.run()
    counted = search(UPSTREAM, parse_bound("S=2,C=1,P=0,I=1"))
    assert set(counted.ends) == plain.ends
    assert counted.counts.split(";")[0] == result.counts().split(";")[0]


def test_taking_states_from_the_design_search_is_sound() -> None:
    """A mutant of page_table_free of each operator (the first that runs),
    judged with and without the states taken from the design's search: the
    same verdicts, counterexamples and end states."""
    bound = parse_bound("S=2,C=1,P=0,I=1")
    base = search(UPSTREAM, bound)
    taken = 0
    seen: set[str] = set()
    for m in derive(UPSTREAM):
        kind = m.operator.rstrip("0123456789")
        if m.method != "page_table_free" or not base.ran_any(m.path, m.lines) or kind in seen:
            continue
        seen.add(kind)
        fast = judge(UPSTREAM, m, bound, base, None, "x")
        slow = judge(UPSTREAM, m, bound, base, None, "x", reuse=False)
        assert (fast.kind, fast.property, fast.detail) == (slow.kind, slow.property, slow.detail)
        assert fast.cost == slow.cost and fast.steps == slow.steps
        taken += fast.taken
    assert taken > 0  # the reuse was exercised
    assert len(seen) >= 5


def _whole_search(design: str, mutant, bound, base=None):  # type: ignore[no-untyped-def]
    """The mutant's complete search (no state taken), taking the design's
    rule calls when base is given: what it reached, how, and what it ran."""
    cls = DESIGNS[design]
    counted, _, _ = counted_class(cls, mutant)
    explorer = Borrowing(counted, bound)
    explorer.borrow_from({}, 0)
    if base is not None:
        method = changed_method(cls, mutant, base)
        explorer.take_calls(base.calls, base.options, base.drains, method)
    try:
        result = explorer.run()
    except Exception as exc:  # an invalid mutant: it must crash the same way
        return type(exc).__name__, explorer
    found = {p: (c.steps, c.cost, c.in_drain, c.message) for p, c in result.found.items()}
    reached = (explorer.states, explorer.violations, explorer.ends, found, result.interleavings)
    return reached, explorer


@pytest.mark.parametrize("design", ["upstream-6.4", "hugh-hh"])
def test_taking_rule_calls_from_the_design_search_is_sound(design: str) -> None:
    """The first mutant that runs of each method and of each operator, searched
    whole with the design's rule calls taken and without: the same states,
    violations, end states, counterexamples and interleavings."""
    bound = parse_bound("S=1,C=1,P=1,I=1")
    cls = DESIGNS[design]
    base = search(cls, bound)
    picked: dict[str, object] = {}
    for m in derive(cls):
        if base.ran_any(m.path, m.lines):
            picked.setdefault(m.method, m)
            picked.setdefault(m.operator.rstrip("0123456789#"), m)
    taken = 0
    for m in {id(m): m for m in picked.values()}.values():
        fast, explorer = _whole_search(design, m, bound, base)
        slow, _ = _whole_search(design, m, bound)
        assert fast == slow, m.id  # type: ignore[attr-defined]
        taken += explorer.calls_taken
    assert len(picked) >= 8
    assert taken > 0  # the taking was exercised


def test_a_mutant_keeps_the_fingerprint_names_of_its_design() -> None:
    m = derive(UPSTREAM)[0]
    cls = mutant_class(UPSTREAM, m)
    assert (cls.__module__, cls.__qualname__, cls.name) == (
        UPSTREAM.__module__,
        UPSTREAM.__qualname__,
        UPSTREAM.name,
    )
    assert getattr(cls, m.method).__qualname__ == getattr(UPSTREAM, m.method).__qualname__


def test_inherited_methods_are_mutated_for_the_inheriting_design() -> None:
    pre = DESIGNS["pre-c2c-5.16"]
    owners = {m.name: m.owner.__name__ for m in methods(pre)}
    assert owners["page_table_free"] == "PreC2c516"
    assert owners["page_table_alloc"] == "Upstream64"
    ids = [m.id for m in derive(pre)]
    assert any(i.startswith("pre-c2c-5.16:page_table_alloc:") for i in ids)
    assert not any(m.operator.startswith("drop-temp") for m in derive(pre))  # no temporary PP
    assert "invariants" not in owners and "bad_bits" not in owners  # the judge is not mutated


def test_killed_replay_file_names_the_mutant_and_recreates_it(tmp_path: Path) -> None:
    line = _line("mask = yield from k.atomic_xor_bits(page, PP << (bit + 24))")
    m = _mutant("upstream-6.4", "page_table_free", line, "delete-step")
    base = search(UPSTREAM, SMALL)
    v = judge(UPSTREAM, m, SMALL, base, tmp_path, source_hash(UPSTREAM))
    replay = load_replay(Path(v.replay))
    assert (replay.mutant, replay.design_source) == (m.id, source_hash(UPSTREAM))
    assert m.id.replace(":", ".") in Path(v.replay).name
    cls = resolve(UPSTREAM, replay.mutant, replay.design_source)
    check = check_replay(Path(v.replay), replay, cls)
    assert check.violation is not None and check.violation.property == "leak"
    assert check_replay(Path(v.replay), replay, UPSTREAM).violation is None  # the design is fine
    with pytest.raises(MutantError, match="has changed since"):
        resolve(UPSTREAM, replay.mutant, "0" * 16)


# --- plugins and bad input --------------------------------------------------

OWN_METHOD_PLUGIN = '''
"""A plugin with a hook of its own: upstream-6.4 with a _bh flush."""
from designs.upstream_6_4 import Upstream64
from stateful.kernel import api as kapi


class BhFlush(Upstream64):
    name = "bh-flush"
    title = "upstream-6.4, tlb_flush_mm_lazy with spin_lock_bh"
    source = "tests/test_mutation.py"
    known = {}

    def tlb_flush_mm_lazy(self, mm):
        yield from kapi.spin_lock_bh(mm.context.lock)
        yield from kapi.flush_mm_if_pending(mm)
        yield from kapi.spin_unlock_bh(mm.context.lock)
'''

NO_SOURCE_PLUGIN = '''
"""A design built at run time: its methods have no source file."""
exec(compile(
    "from designs.upstream_6_4 import Upstream64\\n"
    "class Generated(Upstream64):\\n"
    "    name = 'generated'\\n"
    "    title = 'built by exec'\\n"
    "    source = 'tests/test_mutation.py'\\n"
    "    known = {}\\n"
    "    def tlb_flush_mm_lazy(self, mm):\\n"
    "        yield from ()\\n",
    "<generated>",
    "exec",
))
'''


def test_a_plugin_design_is_mutated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, "bh_flush", OWN_METHOD_PLUGIN, "bh-flush = bh_flush:BhFlush")
    install_plugin(
        tmp_path, "oot_design", GOOD_PLUGIN, "out-of-tree = oot_design:OutOfTreeUpstream"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    designs = load_designs()
    own = designs["bh-flush"]
    mutants = {m.id: m for m in derive(own)}
    flavour = next(
        m
        for m in mutants.values()
        if m.method == "tlb_flush_mm_lazy" and m.operator == "lock-flavour"
    )
    assert flavour.path.endswith("bh_flush/__init__.py")
    assert flavour.shown.startswith("yield from kapi.spin_lock(mm.context.lock)")
    base = search(own, SMALL)
    v = judge(own, flavour, SMALL, base, None, source_hash(own))
    assert v.kind in (EQUIVALENT, "survived"), v  # upstream-6.4's own flavour
    # An inherited-only plugin gets upstream-6.4's mutants, under its own name.
    oot = derive(designs["out-of-tree"])
    assert [m.id.split(":", 1)[1] for m in oot] == [m.id.split(":", 1)[1] for m in derive(UPSTREAM)]
    assert all(m.id.startswith("out-of-tree:") for m in oot)


def test_a_design_without_source_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, "generated", NO_SOURCE_PLUGIN, "generated = generated:Generated")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SourceError, match="no readable source"):
        derive(load_designs()["generated"])
    done = _pgfrag(tmp_path, "--mutants", "generated")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--mutants 'generated' refused" in done.stderr and "no readable source" in done.stderr


def test_an_unknown_design_is_a_usage_error_listing_the_valid_ones(tmp_path: Path) -> None:
    done = _pgfrag(tmp_path, "--mutants", "upstream-6.5")
    assert done.returncode == 4
    assert "--mutants 'upstream-6.5': no such design; valid:" in done.stderr
    assert "upstream-6.4" in done.stderr


def _pgfrag(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    return subprocess.run(
        [sys.executable, "-m", "stateful.cli", "-n", "0", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_design_source_hash_names_the_methods_as_written() -> None:
    assert source_hash(UPSTREAM) == source_hash(DESIGNS["upstream-6.4"])
    assert source_hash(UPSTREAM) != source_hash(DESIGNS["pre-c2c-5.16"])


def test_deleting_the_only_step_of_a_block_keeps_a_valid_method() -> None:
    line = _line("yield from k.list_del(page)", after="def alloc_list_del")
    m = _mutant("upstream-6.4", "alloc_list_del", line, "delete-step")
    v = _judge("upstream-6.4", m)
    assert v.kind != INVALID, v


@pytest.mark.parametrize("operator", ["delete-step", "drop-condition"])
def test_a_page_left_pg_active_is_killed_by_the_bad_page_state_check(operator: str) -> None:
    """no-readd's release that never clears PG_active (TestClearPageActive made
    a plain PageActive, or the test dropped) frees a page with the flag set:
    the kernel's "Bad page state" at free, two operations and a grace period
    in, where the unmutated design reaches nothing."""
    where = Path(inspect.getfile(DESIGNS["no-readd"]))
    line = _line("k.TestClearPageActive(page)", after="def page_table_release", path=where)
    m = _mutant("no-readd", "page_table_release", line, operator)
    v = _judge("no-readd", m)
    assert (v.kind, v.property) == (KILLED, "bad-bits"), v
    assert "Bad page state" in v.detail and "flags: (active)" in v.detail
