"""The posted C's slips, pinned: the model runs the patches as posted.

pte_free_half, as posted in the 13 June rework (hugh-hh), Gerald's 14 June
diff (gerald), [PATCH v2 07/12] (global-lock) and Gerald's 28 June version
(gerald-v2), tests `mask & 0x0CU` on the whole _refcount that atomic_xor_bits
returned, without `mask >>= 24`: the page's own count (1), not the HH bits.
When both halves of a page were deferred, the second pte_free_defer sees the
first one's rcu_head in flight and leaves its call_rcu to pte_free_half,
which never makes it. global-lock-intended adds the shift and does.

c2c224932fd0 ("s390/mm: fix 2KB pgtable release race") is the temporary PP
in page_table_free: upstream-6.4 has it (xor 0x11, then 0x10), pre-c2c-5.16
does not (xor 0x01 only).
"""

from __future__ import annotations

import pytest

from designs.base import Design
from designs.registry import load_designs
from stateful.kernel.cpu import Steps
from stateful.kernel.memory import Page, Table
from stateful.kernel.mm import MMStruct
from stateful.kernel.mmu_gather import tlb_finish_mmu, tlb_gather_mmu
from stateful.kernel.world import KernelConfig, World
from stateful.violations import UseAfterFree
from tests.kernel_helpers import grace_period, run_task, softirq

DESIGNS = load_designs()
POSTED = ["hugh-hh", "gerald", "global-lock", "gerald-v2"]


def _world(name: str) -> World:
    return World.for_design(DESIGNS[name], KernelConfig(ncpus=2))


def _mm(w: World) -> MMStruct:
    mm = w.mm_alloc("mm0", pgste=False)
    run_task(w, w.hook("init_context", mm), label="fork")
    return mm


def _both_halves(w: World, mm: MMStruct) -> tuple[Table, Table]:
    lower = run_task(w, w.hook("page_table_alloc", mm), label="alloc")
    upper = run_task(w, w.hook("page_table_alloc", mm), label="alloc")
    assert isinstance(lower, Table) and isinstance(upper, Table)
    assert lower.page is upper.page and (lower.bit, upper.bit) == (0, 1)
    assert lower.page.refbyte == 0x03
    return lower, upper


def _queued(w: World) -> list[str]:
    return [getattr(cb.fn, "__name__", "?") for cb in w.rcu.pending()]


def _steps(w: World) -> list[str]:
    return [e.text.strip() for e in w.trace.events if e.kind == "step"]


def _defer_both(name: str) -> tuple[World, Page]:
    """Both halves through pte_free_defer, then the grace period and the
    softirq that runs the one pte_free_now queued."""
    w = _world(name)
    mm = _mm(w)
    lower, upper = _both_halves(w, mm)
    page = lower.page
    run_task(w, w.hook("pte_free_defer", mm, lower), label="khugepaged")
    assert _queued(w) == ["pte_free_now0"]
    run_task(w, w.hook("pte_free_defer", mm, upper), label="khugepaged")
    # HH of both halves: the second leaves its call_rcu to pte_free_now0.
    assert page.refbyte & 0x0C == 0x0C
    assert _queued(w) == ["pte_free_now0"]
    grace_period(w)
    ctx = softirq(w, cpu=0)
    assert ctx.done
    return w, page


@pytest.mark.parametrize("name", POSTED)
def test_posted_pte_free_half_never_queues_the_other_half(name: str) -> None:
    if name not in DESIGNS:
        pytest.skip(f"{name} is not a design in this tree")
    w, page = _defer_both(name)
    # pte_free_now0 cleared its HH and its PP; the upper half's HH and PP stay,
    # and nothing will ever clear them: the page and the upper table leak.
    assert "atomic_xor_bits(P0, 0x04) -> 0x38" in _steps(w)
    assert page.refbyte == 0x28
    assert _queued(w) == []
    assert not page.freed


def test_intended_pte_free_half_queues_the_other_half_and_frees_the_page() -> None:
    w, page = _defer_both("global-lock-intended")
    assert "atomic_xor_bits(P0, 0x04) -> 0x38" in _steps(w)
    assert _queued(w) == ["pte_free_now1"]
    grace_period(w)
    softirq(w, cpu=0)
    assert page.refbyte == 0x00
    assert page.freed


def _free_lower(name: str) -> list[str]:
    w = _world(name)
    mm = _mm(w)
    lower, _ = _both_halves(w, mm)
    w.trace.events.clear()
    run_task(w, w.hook("page_table_free", mm, lower), label="pte_free")
    return [s for s in _steps(w) if s.startswith("atomic_xor_bits")]


def test_upstream_page_table_free_has_the_temporary_pp() -> None:
    # c2c224932fd0: AA off and PP on in one step under the lock, PP off after it.
    assert _free_lower("upstream-6.4") == [
        "atomic_xor_bits(P0, 0x11) -> 0x12",
        "atomic_xor_bits(P0, 0x10) -> 0x02",
    ]


def test_pre_c2c_page_table_free_has_no_temporary_pp() -> None:
    assert _free_lower("pre-c2c-5.16") == ["atomic_xor_bits(P0, 0x01) -> 0x02"]


def test_the_designs_differ_only_where_the_headers_say() -> None:
    """pre-c2c-5.16 overrides page_table_free alone; global-lock-intended
    pte_free_half alone: every other hook is the posted design's own."""

    def own(cls: type[Design]) -> set[str]:
        return {n for n, v in vars(cls).items() if callable(v) and not n.startswith("__")}

    assert own(DESIGNS["pre-c2c-5.16"]) == {"page_table_free"}
    assert DESIGNS["pre-c2c-5.16"].__mro__[1] is DESIGNS["upstream-6.4"]
    assert own(DESIGNS["global-lock-intended"]) == {"pte_free_half"}
    assert DESIGNS["global-lock-intended"].__mro__[1] is DESIGNS["global-lock"]


def _c2c_race(name: str) -> Page:
    """The interleaving c2c224932fd0's message draws, given step by step (not
    searched: this pins the model of the fix's three lines, not a verdict).
    CPU0 frees the upper half through the mmu_gather; after the grace period,
    CPU1's page_table_free of the lower half is stopped right after its
    atomic_xor_bits, under the lock; CPU0's softirq runs __tlb_remove_table
    of the upper half; then CPU1 goes on to its list_del."""
    w = _world(name)
    mm = _mm(w)
    lower, upper = _both_halves(w, mm)
    page = lower.page

    def munmap() -> Steps[None]:
        tlb = tlb_gather_mmu(mm)
        yield from w.hook("page_table_free_rcu", tlb, upper)
        yield from tlb_finish_mmu(tlb)

    run_task(w, munmap(), label="munmap")
    assert page.refbyte == 0x21
    grace_period(w)
    pte_free = w.start_task(w.cpus[1], "pte_free", w.hook("page_table_free", mm, lower))
    while page.refbyte == 0x21:
        w.advance(pte_free)
    assert not pte_free.done
    softirq(w, cpu=0)
    w.run(pte_free)
    assert pte_free.done
    return page


def test_the_c2c_race_is_a_use_after_free_without_the_temporary_pp() -> None:
    with pytest.raises(UseAfterFree, match=r"use-after-free of struct page in list_del\(P0->lru\)"):
        _c2c_race("pre-c2c-5.16")


def test_the_same_interleaving_is_clean_with_the_temporary_pp() -> None:
    page = _c2c_race("upstream-6.4")
    assert page.freed and page.refbyte == 0x00
