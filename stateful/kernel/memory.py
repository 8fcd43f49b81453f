"""Pages and the page allocator.

Freed memory is poisoned for ever (the model never hands a struct page out
twice), so every later access through a stale pointer is a use-after-free
at the step that makes it, worded as KASAN would.

The upper byte of `page->_refcount` is kept as its own field, `refbyte`,
with the kernel's bit values; it changes only through `atomic_xor_bits`.
"""

from __future__ import annotations

from typing import Any

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Steps
from stateful.kernel.lists import ListHead, Lru
from stateful.violations import DoubleFree


@define(eq=False)
class KObject:
    """Anything with a lifetime that KASAN would watch."""

    name: str
    freed: bool = False
    freed_where: str = ""

    def __repr__(self) -> str:
        return self.name


@define(eq=False, repr=False)
class Page(KObject):
    refbyte: int = 0
    lru: Lru = Lru.POISONED
    list_of: ListHead | None = None
    pt_mm: Any = None
    flags: set[str] = field(factory=set)
    purpose: str = "pgtable"

    @property
    def rcu_head(self) -> PageRcuHead:
        return PageRcuHead(self)


@define(frozen=True)
class PageRcuHead:
    """&page->rcu_head: the same memory as page->lru."""

    page: Page

    def __repr__(self) -> str:
        return f"{self.page}->rcu_head"


@define(frozen=True, eq=True)
class Table:
    """A page table: a 2K half of a page (bit 0 lower, 1 upper) or a whole 4K page."""

    page: Page = field(eq=False)
    bit: int | None
    page_id: int = field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "page_id", id(self.page))

    def __repr__(self) -> str:
        if self.bit is None:
            return f"{self.page}"
        return f"{self.page}.{'hi' if self.bit else 'lo'}"

    @property
    def halves(self) -> tuple[int, ...]:
        return (0, 1) if self.bit is None else (self.bit,)


@define(frozen=True)
class Tagged:
    """`table | tag` as passed through tlb_remove_table: 0x01 lower, 0x02 upper, 0x03 4K."""

    page: Page
    tag: int

    def __repr__(self) -> str:
        return {1: f"{self.page}.lo", 2: f"{self.page}.hi", 3: f"{self.page}|3"}.get(
            self.tag, f"{self.page}"
        )


@define
class PageAllocator:
    next_pfn: int = 0
    live: dict[int, Page] = field(factory=dict)

    def alloc(self, purpose: str) -> Page:
        page = Page(name=f"P{self.next_pfn}", purpose=purpose)
        self.live[id(page)] = page
        self.next_pfn += 1
        return page


def alloc_page(purpose: str = "pgtable") -> Steps[Page]:
    """alloc_page(GFP_KERNEL): page table allocation is not made to fail here."""
    w = current.world()
    page = w.allocator.alloc(purpose)
    w.trace_step(f"alloc_page() -> {page}")
    yield None
    return page


def free_page(page: Page) -> Steps[None]:
    """__free_page(): the last reference to a page table page is dropped."""
    w = current.world()
    ctx = current.context()
    if page.freed:
        w.report(
            DoubleFree,
            f"BUG: KASAN: double-free in __free_page: {page} was already freed "
            f"by {page.freed_where}",
            where=f"__free_page({page})",
        )
    w.before_page_free(page)
    page.freed = True
    page.freed_where = f"{ctx!r} at step {w.steps}"
    w.allocator.live.pop(id(page), None)
    w.trace_step(f"__free_page({page})")
    yield None


def atomic_read(page: Page) -> Steps[int]:
    w = current.world()
    w.access(page, f"atomic_read(&{page}->_refcount)")
    value = page.refbyte
    w.trace_step(f"atomic_read({page}) -> {value:#04x}")
    yield None
    return value


def atomic_xor_bits(page: Page, bits: int) -> Steps[int]:
    """Returns the new upper byte, as the kernel's atomic_xor_bits returns the new value."""
    w = current.world()
    w.access(page, f"atomic_xor_bits(&{page}->_refcount)")
    page.refbyte ^= bits
    value = page.refbyte
    w.trace_step(f"atomic_xor_bits({page}, {bits:#04x}) -> {value:#04x}")
    w.check_bits(page)
    yield None
    return value


def read_pt_mm(page: Page) -> Steps[Any]:
    w = current.world()
    w.access(page, f"READ {page}->pt_mm")
    value = page.pt_mm
    w.trace_step(f"{page}->pt_mm -> {value!r}")
    yield None
    return value


def write_pt_mm(page: Page, value: Any) -> Steps[None]:
    w = current.world()
    w.access(page, f"WRITE {page}->pt_mm")
    page.pt_mm = value
    w.trace_step(f"{page}->pt_mm = {value!r}")
    yield None


def SetPageFlag(page: Page, flag: str) -> Steps[None]:  # noqa: N802 - kernel naming
    w = current.world()
    w.access(page, f"SetPage{flag}({page})")
    page.flags.add(flag)
    w.trace_step(f"SetPage{flag}({page})")
    yield None


def TestPageFlag(page: Page, flag: str) -> Steps[bool]:  # noqa: N802
    w = current.world()
    w.access(page, f"Page{flag}({page})")
    value = flag in page.flags
    w.trace_step(f"Page{flag}({page}) -> {int(value)}")
    yield None
    return value


def TestClearPageFlag(page: Page, flag: str) -> Steps[bool]:  # noqa: N802
    w = current.world()
    w.access(page, f"TestClearPage{flag}({page})")
    value = flag in page.flags
    page.flags.discard(flag)
    w.trace_step(f"TestClearPage{flag}({page}) -> {int(value)}")
    yield None
    return value


def read_table(table: Table) -> Steps[None]:
    """A lockless walker reads the entries of a page table."""
    w = current.world()
    w.access(table.page, f"pte_offset_map({table})")
    current.context().seen_tables.add(table)
    w.trace_step(f"read ptes of {table}")
    yield None
