"""list_head with CONFIG_DEBUG_LIST checks, and the page->lru / page->rcu_head overlay."""

from __future__ import annotations

import pytest
from kernel_helpers import (
    Script,
    grace_period,
    make_world,
    new_page,
    queue_callback,
    recorder,
    run_task,
    softirq,
)

from stateful.kernel import api as k
from stateful.kernel.lists import ListHead, Lru
from stateful.kernel.memory import Page
from stateful.kernel.world import World
from stateful.violations import ListCorruption, UseAfterFree


def new_list(w: World, name: str = "pgtable_list") -> ListHead:
    head = ListHead(name)
    run_task(w, k.INIT_LIST_HEAD(head))
    return head


def queue_rcu_head(w: World, page: Page) -> list[str]:
    log: list[str] = []
    queue_callback(w, 0, page.rcu_head, recorder(log, "cb"), "cb")
    return log


# --- list_del / list_add ----------------------------------------------------


def test_list_del_of_a_page_never_listed_is_list_corruption() -> None:
    w = make_world()
    page = new_page(w)
    with pytest.raises(ListCorruption, match=r"list_del corruption, P0->lru->next is LIST_POISON1"):
        run_task(w, k.list_del(page))


def test_list_del_twice_is_list_corruption() -> None:
    def add_del_del(page: Page, head: ListHead) -> Script:
        yield from k.list_add(page, head)
        yield from k.list_del(page)
        yield from k.list_del(page)

    w = make_world()
    page, head = new_page(w), new_list(w)
    with pytest.raises(ListCorruption, match=r"list_del corruption.*LIST_POISON1"):
        run_task(w, add_del_del(page, head))
    assert head.entries == []


def test_list_add_then_list_del_is_fine() -> None:
    def add_del_add(page: Page, head: ListHead) -> Script:
        yield from k.list_add(page, head)
        assert head.entries == [page]
        yield from k.list_del(page)
        assert head.entries == []
        yield from k.list_add_tail(page, head)

    w = make_world()
    page, head = new_page(w), new_list(w)
    run_task(w, add_del_add(page, head))
    assert head.entries == [page] and page.lru is Lru.LISTED and page.list_of is head


def test_list_del_init_leaves_an_entry_that_may_be_deleted_again() -> None:
    def twice(page: Page, head: ListHead) -> Script:
        yield from k.list_add(page, head)
        yield from k.list_del_init(page)
        empty = yield from k.list_empty(page)
        yield from k.list_del(page)
        return empty

    w = make_world()
    page, head = new_page(w), new_list(w)
    assert run_task(w, twice(page, head)) is True
    assert head.entries == [] and page.lru is Lru.POISONED


@pytest.mark.parametrize("second_list", [False, True], ids=["same-list", "other-list"])
def test_list_add_of_a_listed_page_is_list_corruption(second_list: bool) -> None:
    w = make_world()
    page, head = new_page(w), new_list(w)
    other = new_list(w, "other_list") if second_list else head
    run_task(w, k.list_add(page, head))
    with pytest.raises(
        ListCorruption,
        match=rf"list_add_tail of P0->lru, already on pgtable_list: list_add_tail to "
        rf"{other.name} corrupts both lists",
    ):
        run_task(w, k.list_add_tail(page, other))


def test_list_order_follows_add_and_add_tail() -> None:
    w = make_world()
    p0, p1, p2, head = new_page(w), new_page(w), new_page(w), new_list(w)
    run_task(w, k.list_add(p0, head))
    run_task(w, k.list_add(p1, head))
    run_task(w, k.list_add_tail(p2, head))
    assert head.entries == [p1, p0, p2]
    assert run_task(w, k.list_first_entry_or_null(head)) is p1


# --- the lru / rcu_head overlay ---------------------------------------------


def test_call_rcu_on_a_listed_page_clobbers_its_lru() -> None:
    w = make_world()
    page, head = new_page(w), new_list(w)
    run_task(w, k.list_add(page, head))
    with pytest.raises(
        ListCorruption, match=r"call_rcu\(P0->rcu_head\) clobbers P0->lru, which is on pgtable_list"
    ):
        queue_rcu_head(w, page)


def test_call_rcu_on_an_unlisted_page_is_fine_and_the_callback_runs() -> None:
    w = make_world()
    page, head = new_page(w), new_list(w)
    run_task(w, k.list_add(page, head))
    run_task(w, k.list_del(page))
    log = queue_rcu_head(w, page)
    assert page.lru is Lru.RCU_QUEUED
    grace_period(w)
    softirq(w, 0)
    assert log == ["cb@CPU0/softirq"] and page.lru is Lru.CLOBBERED
    run_task(w, k.list_add(page, head))  # the callback is done with the rcu_head
    assert head.entries == [page] and w.reports == []


def test_list_add_of_a_page_whose_rcu_head_is_queued_is_list_corruption() -> None:
    w = make_world()
    page, head = new_page(w), new_list(w)
    queue_rcu_head(w, page)
    with pytest.raises(
        ListCorruption, match=r"list_add\(P0->lru\) overwrites P0->rcu_head, which is queued"
    ):
        run_task(w, k.list_add(page, head))


def test_list_del_of_a_page_whose_rcu_head_is_queued_is_list_corruption() -> None:
    w = make_world()
    page = new_page(w)
    queue_rcu_head(w, page)
    with pytest.raises(
        ListCorruption, match=r"list_del corruption: P0->lru is P0->rcu_head, queued by call_rcu"
    ):
        run_task(w, k.list_del(page))


def test_linking_next_to_a_freed_page_left_on_the_list_is_caught() -> None:
    w = make_world()
    p0, p1, head = new_page(w), new_page(w), new_list(w)
    run_task(w, k.list_add(p0, head))
    run_task(w, k.free_page(p0))  # the design's bug: freed while still on the list
    with pytest.raises((UseAfterFree, ListCorruption)):
        run_task(w, k.list_add(p1, head))  # __list_add(new, head, head->next == P0)
