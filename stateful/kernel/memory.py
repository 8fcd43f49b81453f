"""Pages and the page allocator.

Freed memory is poisoned for ever (the model never hands a struct page out
twice), so every later access through a stale pointer is a use-after-free
at the step that makes it, worded as KASAN would.

The upper byte of `page->_refcount` is kept as its own field, `refbyte`,
with the kernel's bit values; it changes only through `atomic_xor_bits`.
`atomic_read` and `atomic_xor_bits` take and return the whole `_refcount`,
as the kernel's do: the upper byte shifted by 24, over the page's ordinary
reference count in the low bits (1 for a page-table page). A design writes
`>> 24` wherever the C shifts, and a test without the shift reads the low
bits, as the C would. The trace shows the upper byte only, as kernel
developers quote it (0x13, not 0x13000001).
"""

from __future__ import annotations

from typing import Any

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Steps
from stateful.kernel.lists import ListHead, Lru
from stateful.violations import BadBits, DoubleFree


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
    # The ordinary reference count below the fragment byte: 1 from alloc_page
    # until __free_page's put_page_testzero.
    count: int = 1
    lru: Lru = Lru.POISONED
    list_of: ListHead | None = None
    # The union of struct page's page-table fields: pt_mm, pt_list (typesafe-rcu)
    # and pt_frag_refcount (gerald-v2) share one word, so one field holds it.
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


# The page flags the model has that PAGE_FLAGS_CHECK_AT_FREE lists: a page
# freed with one set is a "Bad page state".
FLAGS_CHECK_AT_FREE = frozenset({"Active"})


def free_page(page: Page) -> Steps[None]:
    """__free_page(): put_page_testzero drops the page's reference, and the
    page goes back to the allocator only if the whole _refcount reaches 0."""
    w = current.world()
    ctx = current.context()
    whole = refcount_of(page)
    if page.freed or whole == 0:
        # put_page_testzero's VM_BUG_ON_PAGE (CONFIG_DEBUG_VM); KASAN does
        # not catch a page freed twice.
        w.report(
            DoubleFree,
            f"page dumped because: VM_BUG_ON_PAGE(page_ref_count(page) == 0) in "
            f"__free_page({page}): "
            + (
                f"it was already freed by {page.freed_where}"
                if page.freed
                else "its _refcount is 0 already (the page was not freed: it leaked)"
            ),
            where=f"__free_page({page})",
        )
        yield None
        return
    whole -= 1
    if whole:
        # Fragment bits left in the byte: the count does not reach 0, and
        # the page is never freed. Nothing reports it; it leaks.
        page.refbyte, page.count = whole >> REFCOUNT_SHIFT, whole & ((1 << REFCOUNT_SHIFT) - 1)
        w.trace_step(f"__free_page({page}): _refcount {whole:#x}, not 0: not freed")
        yield None
        return
    page.count = 0
    checked = sorted(page.flags & FLAGS_CHECK_AT_FREE)
    if checked:
        # free_pages_prepare(): bad_page() reports it and the page is not
        # freed: it leaks, as in the kernel.
        w.report(
            BadBits,
            f"BUG: Bad page state in process {ctx!r}: {page} flags: ({','.join(checked).lower()}); "
            "page dumped because: PAGE_FLAGS_CHECK_AT_FREE flag(s) set",
            where=f"__free_page({page})",
        )
        w.debug_locks_off()  # bad_page(): add_taint(TAINT_BAD_PAGE, LOCKDEP_NOW_UNRELIABLE)
        w.trace_step(f"__free_page({page}): bad page, leaked")
        yield None
        return
    w.before_page_free(page)
    page.freed = True
    page.freed_where = f"{ctx!r} at step {w.steps}"
    w.allocator.live.pop(id(page), None)
    w.trace_step(f"__free_page({page})")
    yield None


# The fragment byte's place in _refcount, above the ordinary count (Page.count).
REFCOUNT_SHIFT = 24


def refcount_of(page: Page) -> int:
    """The whole page->_refcount: the fragment byte over the ordinary count."""
    return (page.refbyte << REFCOUNT_SHIFT) | page.count


def atomic_read(page: Page) -> Steps[int]:
    """atomic_read(&page->_refcount): the whole value (shift it to test the byte)."""
    w = current.world()
    w.access(page, f"atomic_read(&{page}->_refcount)")
    value = refcount_of(page)
    w.trace_step(f"atomic_read({page}) -> {page.refbyte:#04x}")
    yield None
    return value


def atomic_xor_bits(page: Page, bits: int) -> Steps[int]:
    """atomic_xor_bits(&page->_refcount, bits): `bits` is the whole-word mask,
    as the C writes it (`0x11U << (bit + 24)`); returns the whole new value."""
    if bits & ((1 << REFCOUNT_SHIFT) - 1) or bits >> (REFCOUNT_SHIFT + 8):
        raise ValueError(
            f"atomic_xor_bits({page}, {bits:#x}): the fragment bits are the upper byte "
            "of _refcount; write the mask as the C does, shifted by 24"
        )
    w = current.world()
    w.access(page, f"atomic_xor_bits(&{page}->_refcount)")
    byte = bits >> REFCOUNT_SHIFT
    page.refbyte ^= byte
    value = refcount_of(page)
    w.trace_step(f"atomic_xor_bits({page}, {byte:#04x}) -> {page.refbyte:#04x}")
    w.check_bits(page)
    yield None
    return value


def read_pt_mm(page: Page, member: str = "pt_mm") -> Steps[Any]:
    """page->pt_mm, or page->pt_list: another name for the same word."""
    w = current.world()
    w.access(page, f"READ {page}->{member}")
    value = page.pt_mm
    w.trace_step(f"{page}->{member} -> {value!r}")
    yield None
    return value


def write_pt_mm(page: Page, value: Any, member: str = "pt_mm") -> Steps[None]:
    w = current.world()
    w.access(page, f"WRITE {page}->{member}")
    page.pt_mm = value
    w.trace_step(f"{page}->{member} = {value!r}")
    yield None


def atomic_read_pt_frag_refcount(page: Page) -> Steps[int]:
    """atomic_read(&page->pt_frag_refcount): the same word as page->pt_mm.

    The page allocator does not promise that word is 0 on a new page (it is
    page->index to the page cache), so a read before the first atomic_set
    reads whatever was left there: the model refuses to guess a value."""
    w = current.world()
    w.access(page, f"atomic_read(&{page}->pt_frag_refcount)")
    value = page.pt_mm
    if not isinstance(value, int):
        raise RuntimeError(
            f"atomic_read(&{page}->pt_frag_refcount) before any atomic_set: it holds {value!r}"
        )
    w.trace_step(f"atomic_read(&{page}->pt_frag_refcount) -> {value}")
    yield None
    return value


def atomic_set_pt_frag_refcount(page: Page, value: int) -> Steps[None]:
    """atomic_set(&page->pt_frag_refcount, value)."""
    w = current.world()
    w.access(page, f"atomic_set(&{page}->pt_frag_refcount)")
    page.pt_mm = value
    w.trace_step(f"atomic_set(&{page}->pt_frag_refcount, {value})")
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
    w.access(table.page, f"pte_offset_map({table})", contents=True)
    current.context().seen_tables.add(table)
    w.trace_step(f"read ptes of {table}")
    yield None
