"""Page-table ownership: double-alloc (World.claim_table) and early-reuse (World.defer_table)."""

from __future__ import annotations

import pytest
from kernel_helpers import Script, make_world, new_page, run_task

from stateful.kernel import api as k
from stateful.kernel.cpu import Context
from stateful.kernel.memory import Table
from stateful.kernel.world import World
from stateful.violations import DoubleAlloc, EarlyReuse


def walk(table: Table) -> Script:
    """ops.reader: rcu_read_lock(), read the ptes, rcu_read_unlock()."""
    yield from k.rcu_read_lock()
    yield from k.read_table(table)
    yield from k.rcu_read_unlock()


def reader_inside(w: World, table: Table, cpu: int = 1) -> Context:
    """A reader on `cpu` that has read `table` and is still inside rcu_read_lock()."""
    ctx = w.start_task(w.cpus[cpu], f"walk({table})", walk(table))
    assert w.advance(ctx) and w.advance(ctx)
    assert table in ctx.seen_tables and ctx in w.rcu.readers
    return ctx


def retract(w: World, table: Table) -> None:
    """ops.defer: the owner gives the table up, then pte_free_defer."""
    w.release_table(table)
    w.defer_table(table)


# --- double-alloc -----------------------------------------------------------


def test_a_table_handed_out_twice_is_double_alloc() -> None:
    w = make_world()
    page = new_page(w)
    w.claim_table(k.table_of(page, 0), "mm0")
    with pytest.raises(
        DoubleAlloc, match=r"handed P0\.lo to mm1, but P0\.lo is still in use by mm0"
    ):
        w.claim_table(k.table_of(page, 0), "mm1")


def test_a_whole_page_over_an_owned_half_is_double_alloc() -> None:
    w = make_world()
    page = new_page(w)
    w.claim_table(k.table_of(page, 1), "mm0")
    with pytest.raises(DoubleAlloc, match=r"handed P0 to mm0, but P0\.hi is still in use"):
        w.claim_table(k.table_of(page, None), "mm0")


def test_the_two_halves_and_a_released_table_may_be_handed_out() -> None:
    w = make_world()
    page = new_page(w)
    lo, hi = k.table_of(page, 0), k.table_of(page, 1)
    w.claim_table(lo, "mm0")
    w.claim_table(hi, "mm0")
    w.release_table(lo)
    w.claim_table(lo, "mm1")
    assert w.owned[(id(page), 0)] == (lo, "mm1") and w.owned[(id(page), 1)] == (hi, "mm0")
    assert w.reports == []


# --- early-reuse ------------------------------------------------------------


def test_deferred_table_reused_under_a_reader_that_saw_it_is_early_reuse() -> None:
    w = make_world()
    table = k.table_of(new_page(w), 0)
    w.claim_table(table, "mm0")
    reader_inside(w, table)
    retract(w, table)
    with pytest.raises(
        EarlyReuse,
        match=r"P0\.lo was passed to pte_free_defer\(\) and page_table_alloc\(\) hands it to "
        r"mm0 while RCU reader CPU1/task:walk\(P0\.lo\), which saw it before, is still inside",
    ):
        w.claim_table(table, "mm0")


def test_deferred_table_freed_under_a_reader_that_saw_it_is_early_reuse() -> None:
    w = make_world()
    page = new_page(w)
    table = k.table_of(page, 1)
    w.claim_table(table, "mm0")
    reader_inside(w, table)
    retract(w, table)
    with pytest.raises(EarlyReuse, match=r"P0\.hi was passed to pte_free_defer\(\) and its page"):
        run_task(w, k.free_page(page), cpu=0)


def test_deferred_table_reused_after_the_reader_left_is_fine() -> None:
    w = make_world()
    page = new_page(w)
    table = k.table_of(page, 0)
    w.claim_table(table, "mm0")
    reader = reader_inside(w, table)
    retract(w, table)
    w.run(reader)
    assert reader.done and reader.seen_tables == set()
    w.claim_table(table, "mm1")
    w.release_table(table)
    run_task(w, k.free_page(page))
    assert w.deferred == {} and w.reports == []


def test_readers_that_did_not_see_the_deferred_table_do_not_count() -> None:
    w = make_world()
    page = new_page(w)
    lo, hi = k.table_of(page, 0), k.table_of(page, 1)
    w.claim_table(lo, "mm0")
    w.claim_table(hi, "mm0")
    reader_inside(w, hi, cpu=1)  # walks the other half
    retract(w, lo)
    late = w.start_task(w.cpus[0], "late", walk(hi))  # enters after the retract
    assert w.advance(late)
    assert w.deferred[(id(page), 0)] == (lo, set())
    w.claim_table(lo, "mm1")
    assert w.reports == []
