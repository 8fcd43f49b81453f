"""Pages and mm_structs: use-after-free, double-free, bad-bits, leak."""

from __future__ import annotations

import pytest
from kernel_helpers import Script, make_world, new_page, run_task

from stateful.drain import check_leaks
from stateful.kernel import api as k
from stateful.kernel.memory import Page, refcount_of
from stateful.kernel.mm import MMStruct
from stateful.kernel.world import World
from stateful.violations import BadBits, DoubleFree, Leak, UseAfterFree


def new_mm(w: World, name: str = "mm0") -> MMStruct:
    mm = MMStruct.create(name, pgste=False)
    w.mms.append(mm)
    run_task(w, w.hook("init_context", mm), label=f"init_context({name})")
    return mm


def lock_mm(mm: MMStruct) -> Script:
    yield from k.spin_lock(mm.context.lock)
    yield from k.spin_unlock(mm.context.lock)


# --- use-after-free ---------------------------------------------------------


def test_atomic_read_of_a_freed_page_is_use_after_free() -> None:
    """Of its struct page: not a KASAN report (struct page is never poisoned)."""
    w = make_world()
    page = new_page(w)
    run_task(w, k.free_page(page), cpu=0, label="freer")
    with pytest.raises(
        UseAfterFree,
        match=r"^use-after-free of struct page in atomic_read\(&P0->_refcount\) by "
        r"CPU1/task:reader: P0 was freed by CPU0/task:freer.*no KASAN report",
    ):
        run_task(w, k.atomic_read(page), cpu=1, label="reader")


def test_reading_the_ptes_of_a_freed_page_is_a_kasan_use_after_free() -> None:
    """Its contents are what KASAN poisons when the page is freed."""
    w = make_world()
    table = k.table_of(new_page(w), 0)
    run_task(w, k.free_page(table.page), cpu=0, label="freer")
    with pytest.raises(
        UseAfterFree, match=r"^BUG: KASAN: use-after-free in pte_offset_map\(P0\.lo\)"
    ):
        run_task(w, k.read_table(table), cpu=1, label="walker")


def test_atomic_read_of_a_live_page_is_fine() -> None:
    w = make_world()
    page = new_page(w)
    # The whole _refcount: the fragment byte over the page's own count of 1.
    assert run_task(w, k.atomic_xor_bits(page, 0x01 << 24)) == 0x01000001
    assert run_task(w, k.atomic_read(page), cpu=1) == 0x01000001
    assert not page.freed and id(page) in w.allocator.live


def test_spin_lock_of_a_freed_mm_is_slab_use_after_free() -> None:
    w = make_world()
    mm = new_mm(w)
    run_task(w, k.mmdrop(mm), label="exit")
    assert mm.freed and mm.mm_count == 0
    with pytest.raises(
        UseAfterFree, match=r"KASAN: slab-use-after-free in spin_lock\(&mm0->context\.lock\)"
    ):
        run_task(w, lock_mm(mm), cpu=1)


def test_mmgrab_keeps_the_mm_alive_across_the_other_mmdrop() -> None:
    w = make_world()
    mm = new_mm(w)
    run_task(w, k.mmgrab(mm))
    run_task(w, k.mmdrop(mm), label="exit")
    assert not mm.freed and mm.mm_count == 1
    run_task(w, lock_mm(mm), cpu=1)
    assert mm.context.lock.holder is None
    run_task(w, k.mmdrop(mm), cpu=1)
    assert mm.freed
    with pytest.raises(UseAfterFree, match=r"slab-use-after-free in mmdrop\(mm0\)"):
        run_task(w, k.mmdrop(mm))


def test_two_racing_mmdrops_run_mmdrop_once() -> None:
    w = make_world()
    mm = new_mm(w)
    run_task(w, k.mmgrab(mm))
    first = w.start_task(w.cpus[0], "first", k.mmdrop(mm))
    last = w.start_task(w.cpus[1], "last", k.mmdrop(mm))
    assert w.advance(first)  # mm_count 2 -> 1
    assert w.advance(last)  # mm_count 1 -> 0: this one owns __mmdrop
    w.run(first)  # must not free: it did not drop the last reference
    w.run(last)
    assert first.done and last.done and mm.freed


# --- double-free ------------------------------------------------------------


def test_freeing_a_page_twice_is_double_free() -> None:
    w = make_world()
    page = new_page(w)
    run_task(w, k.free_page(page), label="first")
    with pytest.raises(
        DoubleFree,
        match=r"VM_BUG_ON_PAGE\(page_ref_count\(page\) == 0\) in __free_page\(P0\): "
        r"it was already freed by CPU0/task",
    ):
        run_task(w, k.free_page(page), cpu=1, label="second")


def test_a_page_freed_with_fragment_bits_left_is_not_freed_but_leaks() -> None:
    """put_page_testzero: the bits keep _refcount above 0, so __free_page
    frees nothing and says nothing; the page is lost, and it is no
    use-after-free to touch it afterwards."""
    w = make_world()
    page = new_page(w)
    run_task(w, k.atomic_xor_bits(page, 0x10 << 24))
    run_task(w, k.free_page(page), label="release")
    assert not page.freed and w.reports == []
    assert refcount_of(page) == 0x10 << 24
    run_task(w, k.atomic_read(page), cpu=1, label="later")
    with pytest.raises(Leak, match=r"^leak: P0 \(pgtable, _refcount byte 0x10\) never freed"):
        check_leaks(w)


def test_freeing_again_a_page_whose_free_was_refused_is_double_free() -> None:
    """A Bad page state leaves the page unfreed with a _refcount of 0: a second
    __free_page is put_page_testzero's VM_BUG_ON_PAGE, which says so."""
    w = make_world(continue_after=["bad-bits"])
    page = new_page(w)
    run_task(w, k.SetPageActive(page))
    run_task(w, k.free_page(page), label="first")
    assert not page.freed and len(w.reports) == 1
    with pytest.raises(DoubleFree, match=r"in __free_page\(P0\): its _refcount is 0 already"):
        run_task(w, k.free_page(page), cpu=1, label="second")


def test_freeing_two_pages_once_each_is_fine() -> None:
    w = make_world()
    pages = [new_page(w), new_page(w)]
    for page in pages:
        run_task(w, k.free_page(page))
    assert all(p.freed for p in pages) and w.allocator.live == {}


# --- bad-bits (the design's bad_bits rule, through atomic_xor_bits) ---------


@pytest.mark.parametrize(
    ("bits", "half"), [(0x11, "lower"), (0x22, "upper")], ids=["lower", "upper"]
)
def test_aa_and_pp_of_one_half_is_bad_bits(bits: int, half: str) -> None:
    w = make_world()
    page = new_page(w)
    with pytest.raises(
        BadBits,
        match=rf"P0->_refcount upper byte {bits:#04x}, impossible by the design's own rules: "
        rf"AA and PP of the {half} half",
    ):
        run_task(w, k.atomic_xor_bits(page, bits << 24))


def test_allocated_to_pending_transitions_are_not_bad_bits() -> None:
    w = make_world()
    page = new_page(w)
    seen = [
        run_task(w, k.atomic_xor_bits(page, bits << 24)) >> 24 for bits in (0x01, 0x02, 0x11, 0x10)
    ]
    assert seen == [0x01, 0x03, 0x12, 0x02]  # lower: AA -> PP -> free; upper still AA
    assert w.reports == []


def test_bad_bits_is_a_warning_the_run_can_go_on_after() -> None:
    w = make_world(continue_after={"bad-bits"})
    page = new_page(w)
    assert run_task(w, k.atomic_xor_bits(page, 0x11 << 24)) >> 24 == 0x11
    assert [r.property for r in w.reports] == ["bad-bits"]


def test_warn_on_once_fires_as_bad_bits_only_when_the_condition_holds() -> None:
    w = make_world()
    assert run_task(w, k.WARN_ON_ONCE(False, "pgalloc.c:42")) is False
    with pytest.raises(BadBits, match=r"WARNING: CPU: 1 at pgalloc\.c:42"):
        run_task(w, k.WARN_ON_ONCE(True, "pgalloc.c:42"), cpu=1)


def test_a_page_freed_with_pg_active_is_a_bad_page_state_and_leaks() -> None:
    """free_pages_prepare(): PG_active is in PAGE_FLAGS_CHECK_AT_FREE; bad_page()
    reports it and the page is not freed."""
    w = make_world(continue_after={"bad-bits"})
    page = new_page(w)
    run_task(w, k.SetPageActive(page))
    run_task(w, k.free_page(page), cpu=1, label="freer")
    assert [r.property for r in w.reports] == ["bad-bits"]
    assert "BUG: Bad page state in process CPU1/task:freer: P0 flags: (active)" in str(w.reports[0])
    assert not page.freed and id(page) in w.allocator.live


def test_a_page_freed_after_testclearpageactive_is_freed() -> None:
    w = make_world()
    page = new_page(w)
    run_task(w, k.SetPageActive(page))
    assert run_task(w, k.TestClearPageActive(page)) is True
    run_task(w, k.free_page(page))
    assert page.freed and w.reports == []


# --- leak -------------------------------------------------------------------


def test_a_page_still_allocated_at_quiescence_is_a_leak() -> None:
    w = make_world()
    page = new_page(w)
    run_task(w, k.atomic_xor_bits(page, 0x01 << 24))
    with pytest.raises(
        Leak, match=r"^leak: P0 \(pgtable, _refcount byte 0x01\) never freed.*kmemleak does not"
    ):
        check_leaks(w)


def test_an_mm_never_dropped_is_a_leak() -> None:
    w = make_world()
    new_mm(w)
    with pytest.raises(Leak, match=r"kmemleak: .*mm0 \(mm_struct, mm_count 1\)"):
        check_leaks(w)


def test_nothing_left_allocated_is_no_leak() -> None:
    w = make_world()
    page: Page = new_page(w)
    mm = new_mm(w)
    run_task(w, k.free_page(page))
    run_task(w, k.mmdrop(mm))
    check_leaks(w)
    assert w.allocator.live == {} and mm.freed and w.reports == []


def test_the_low_bits_of_refcount_are_the_page_count_not_the_fragment_bits() -> None:
    """A test of the returned value without `>> 24` reads the page's own
    reference count, as the C would: the posted pte_free_half's slip."""
    w = make_world()
    page = new_page(w)
    run_task(w, k.atomic_xor_bits(page, 0x03 << 24))  # both halves allocated
    mask = run_task(w, k.atomic_xor_bits(page, 0x15 << 24))  # lower deferred: HH and PP
    assert mask >> 24 == 0x16 and mask & 0x0C == 0  # the unshifted test sees no HH bit


def test_a_mask_not_shifted_into_the_upper_byte_is_refused() -> None:
    w = make_world()
    page = new_page(w)
    with pytest.raises(ValueError, match="shifted by 24"):
        run_task(w, k.atomic_xor_bits(page, 0x11))
