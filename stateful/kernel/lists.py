"""list_head with CONFIG_DEBUG_LIST-style checks, and the lru/rcu_head overlay.

`page->lru` and `page->rcu_head` are one piece of memory. The model keeps a
single field for both, so linking a page whose rcu_head is queued, or queuing
the rcu_head of a listed page, is caught at the step that does it.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Steps
from stateful.violations import ListCorruption

if TYPE_CHECKING:
    from stateful.kernel.memory import KObject, Page

LIST_POISON1 = "dead000000000100"


class Lru(Enum):
    POISONED = "poisoned"  # after list_del, or fresh from the page allocator
    INIT = "init"  # self-linked: INIT_LIST_HEAD or list_del_init
    LISTED = "listed"
    RCU_QUEUED = "rcu_head queued"
    CLOBBERED = "clobbered"  # rcu_head was used and the callback has run


@define(eq=False)
class ListHead:
    name: str  # "mm0->context.pgtable_list"
    container: KObject | None = None
    entries: list[Page] = field(factory=list)
    initialised: bool = False

    def __repr__(self) -> str:
        return self.name


def _access_head(head: ListHead, what: str) -> None:
    if head.container is not None:
        current.world().access(head.container, what)


def INIT_LIST_HEAD(head: ListHead | Page) -> Steps[None]:  # noqa: N802 - the kernel's name
    """INIT_LIST_HEAD(&head) of a list, or of &page->lru (self-linked: list_empty)."""
    if isinstance(head, ListHead):
        _access_head(head, f"INIT_LIST_HEAD({head})")
        head.entries.clear()
        head.initialised = True
        current.world().trace_step(f"INIT_LIST_HEAD({head})")
    else:
        current.world().access(head, f"INIT_LIST_HEAD({head}->lru)")
        head.lru = Lru.INIT
        current.world().trace_step(f"INIT_LIST_HEAD({head}->lru)")
    yield None


def _corrupt(msg: str, where: str) -> None:
    current.world().report(ListCorruption, msg, where=where)


def _show(head: ListHead) -> None:
    """Under a step that changed it: what the list links now, first to last."""
    content = " ".join(repr(page) for page in head.entries) or "(empty)"
    current.world().trace_note(f"{head}: {content}")


def _check_add(page: Page, head: ListHead, fn: str) -> None:
    w = current.world()
    w.access(page, f"{fn}({page}->lru)")
    _access_head(head, f"{fn}({page}->lru, {head})")
    if page.lru is Lru.LISTED:
        _corrupt(
            f"{fn} of {page}->lru, already on {page.list_of}: {fn} to {head} corrupts "
            "both lists (CONFIG_DEBUG_LIST's 'list_add double add' catches it only "
            "next to where it is added; otherwise a later list operation reports it)",
            f"{fn}({page}->lru, {head})",
        )
    elif page.lru is Lru.RCU_QUEUED:
        _corrupt(
            f"{fn}({page}->lru) overwrites {page}->rcu_head, which is queued by call_rcu: "
            "the RCU callback list is corrupt (the kernel checks nothing here: "
            "rcu_do_batch later calls a list pointer as the callback)",
            f"{fn}({page}->lru, {head})",
        )


def _touch_neighbours(neighbours: list[Page], what: str) -> None:
    """Linking or unlinking writes the neighbours' lru: a freed one is a use-after-free."""
    w = current.world()
    for neighbour in neighbours:
        w.access(neighbour, f"{what}: write {neighbour}->lru")


def list_add(page: Page, head: ListHead) -> Steps[None]:
    _check_add(page, head, "list_add")
    _touch_neighbours(head.entries[:1], f"list_add({page}->lru)")
    head.entries.insert(0, page)
    page.lru, page.list_of = Lru.LISTED, head
    current.world().trace_step(f"list_add({page}->lru, {head})")
    _show(head)
    yield None


def list_add_tail(page: Page, head: ListHead) -> Steps[None]:
    _check_add(page, head, "list_add_tail")
    _touch_neighbours(head.entries[-1:], f"list_add_tail({page}->lru)")
    head.entries.append(page)
    page.lru, page.list_of = Lru.LISTED, head
    current.world().trace_step(f"list_add_tail({page}->lru, {head})")
    _show(head)
    yield None


def _unlink(page: Page, fn: str) -> None:
    w = current.world()
    w.access(page, f"{fn}({page}->lru)")
    if page.lru is Lru.LISTED:
        assert page.list_of is not None
        _access_head(page.list_of, f"{fn}({page}->lru)")
        entries = page.list_of.entries
        i = entries.index(page)
        _touch_neighbours(entries[max(i - 1, 0) : i] + entries[i + 1 : i + 2], f"{fn}({page}->lru)")
        entries.remove(page)
        page.list_of = None
    elif page.lru is Lru.RCU_QUEUED:
        _corrupt(
            f"{fn} corruption: {page}->lru is {page}->rcu_head, queued by call_rcu: "
            "unlinking it corrupts the RCU callback list",
            f"{fn}({page}->lru)",
        )
    elif page.lru is Lru.CLOBBERED:
        _corrupt(
            f"{fn} corruption: {page}->lru is on no list, it holds the rcu_head of a "
            "finished call_rcu (prev is its callback function, not a list entry)",
            f"{fn}({page}->lru)",
        )
    elif page.lru is not Lru.INIT:
        _corrupt(
            f"{fn} corruption, {page}->lru->next is LIST_POISON1 ({LIST_POISON1})",
            f"{fn}({page}->lru)",
        )


def _delete(page: Page, fn: str, after: Lru) -> None:
    head = page.list_of  # None when not listed: no list changes, none to show
    _unlink(page, fn)
    page.lru = after
    current.world().trace_step(f"{fn}({page}->lru)")
    if head is not None:
        _show(head)


def list_del(page: Page) -> Steps[None]:
    _delete(page, "list_del", Lru.POISONED)
    yield None


def list_del_init(page: Page) -> Steps[None]:
    _delete(page, "list_del_init", Lru.INIT)
    yield None


def list_empty(page: Page) -> Steps[bool]:
    """list_empty(&page->lru): true only for a self-linked entry."""
    current.world().access(page, f"list_empty({page}->lru)")
    empty = page.lru is Lru.INIT
    current.world().trace_step(f"list_empty({page}->lru) -> {int(empty)}")
    yield None
    return empty


def list_first_entry_or_null(head: ListHead) -> Steps[Page | None]:
    _access_head(head, f"list_first_entry({head})")
    page = head.entries[0] if head.entries else None
    current.world().trace_step(f"list_first_entry({head}) -> {page if page else 'NULL'}")
    yield None
    return page
