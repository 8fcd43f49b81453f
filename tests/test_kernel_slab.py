"""kmem caches: SLAB_TYPESAFE_BY_RCU reuse and rcu_free_slab, plain-cache poisoning, leaks."""

from __future__ import annotations

import pytest
from attrs import define, field
from kernel_helpers import Script, grace_period, make_world, queue_callback, run_task, softirq

from stateful.drain import check_leaks
from stateful.kernel import api as k
from stateful.kernel.rcu import RcuHead
from stateful.kernel.world import World
from stateful.violations import DoubleFree, Leak, UseAfterFree


@define(eq=False, repr=False)
class Thing(k.SlabObject):
    """struct thing { spinlock_t lock; struct list_head list; }"""

    prefix = "thing"
    lock: k.SpinLock = field(init=False)
    list: k.ListHead = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.lock = k.SpinLock(f"&{self.name}->lock", "&thing->lock", container=self)
        self.list = k.ListHead(f"{self.name}->list", container=self)


def cache_of(typesafe: bool, ctor_runs: list[str] | None = None) -> k.KmemCache:
    def thing_ctor(obj: Thing) -> Script:
        if ctor_runs is not None:
            ctor_runs.append(obj.name)
        yield from k.spin_lock_init(obj.lock)
        yield from k.INIT_LIST_HEAD(obj.list)

    return k.kmem_cache_create("thing", Thing, typesafe_by_rcu=typesafe, ctor=thing_ctor)


def alloc(w: World, cache: k.KmemCache, cpu: int = 0) -> Thing:
    obj = run_task(w, k.kmem_cache_alloc(cache), cpu=cpu, label="alloc")
    assert isinstance(obj, Thing) and obj.allocated
    return obj


def free(w: World, cache: k.KmemCache, obj: Thing, cpu: int = 0) -> None:
    run_task(w, k.kmem_cache_free(cache, obj), cpu=cpu, label="free")


def lock_it(obj: Thing) -> Script:
    """What a stale __tlb_remove_table does: take the lock through an old pointer."""
    yield from k.spin_lock_bh(obj.lock)
    yield from k.spin_unlock_bh(obj.lock)


def free_and_release(w: World, cache: k.KmemCache, obj: Thing, cpu: int = 0) -> None:
    """kmem_cache_free, then the grace period, then rcu_free_slab in softirq on that CPU."""
    free(w, cache, obj, cpu)
    grace_period(w)
    assert softirq(w, cpu).done


# --- typesafe: valid memory until rcu_free_slab, use-after-free after -------


def test_a_freed_typesafe_object_can_be_locked_before_its_slab_goes_back() -> None:
    w = make_world()
    cache = cache_of(typesafe=True)
    obj = alloc(w, cache)
    free(w, cache, obj)
    assert not obj.allocated and not obj.freed
    run_task(w, lock_it(obj), cpu=1, label="stale")
    run_task(w, k.list_first_entry_or_null(obj.list), cpu=1, label="stale")
    assert w.reports == [] and id(obj.slab) in w.allocator.live


@pytest.mark.parametrize("touch", ["lock", "list"])
def test_touching_it_after_rcu_free_slab_is_use_after_free(touch: str) -> None:
    w = make_world()
    cache = cache_of(typesafe=True)
    obj = alloc(w, cache)
    free_and_release(w, cache, obj)
    assert obj.freed and obj.slab is not None and obj.slab.freed
    script = lock_it(obj) if touch == "lock" else k.list_first_entry_or_null(obj.list)
    with pytest.raises(
        UseAfterFree,
        match=r"BUG: KASAN: use-after-free in .*thing0.* by CPU1/task:stale: thing0 was freed by "
        r"CPU0/softirq:rcu_core in rcu_free_slab\(P0\) .*a grace period after kmem_cache_free",
    ):
        run_task(w, script, cpu=1, label="stale")


def test_rcu_free_slab_does_not_run_before_a_grace_period() -> None:
    w = make_world()
    cache = cache_of(typesafe=True)
    obj = alloc(w, cache)
    free(w, cache, obj)
    assert softirq(w, 0).done  # nothing is ready yet
    assert not obj.freed and not w.rcu.has_ready(0)
    grace_period(w)
    assert w.rcu.has_ready(0) and not obj.freed  # ready, but only a softirq runs it
    softirq(w, 0)
    assert obj.freed and w.allocator.live == {}


def test_a_lock_holder_from_before_the_free_holds_off_rcu_free_slab() -> None:
    """Held spinlocks are read-side sections (v4.20): the stale locker is safe while inside."""
    w = make_world()
    cache = cache_of(typesafe=True)
    obj = alloc(w, cache)
    holder = w.start_task(w.cpus[1], "stale", lock_it(obj))
    assert w.advance(holder)  # spin_lock_bh(&thing0->lock) held
    free(w, cache, obj)
    w.rcu.start_gp()
    assert not w.rcu.may_end_gp()
    w.run(holder)  # spin_unlock_bh: no report, the slab is still there
    assert holder.done and w.reports == []
    assert w.rcu.may_end_gp()
    w.rcu.end_gp()
    softirq(w, 0)
    assert obj.freed


def test_rcu_free_slab_runs_on_the_freeing_cpu_and_waits_for_no_callback_elsewhere() -> None:
    """An RCU callback queued on another CPU is not a reader: the slab can go first."""
    w = make_world()
    cache = cache_of(typesafe=True)
    obj = alloc(w, cache)
    log: list[str] = []

    def stale_callback(head: RcuHead) -> Script:
        log.append("ran")
        yield from lock_it(obj)

    queue_callback(w, 1, RcuHead("queued-first"), stale_callback, "stale_callback")
    free(w, cache, obj, cpu=0)
    assert [cb.label for cb in w.rcu.queues[0]] == ["rcu_free_slab(P0: thing0)"]
    grace_period(w)
    softirq(w, 0)
    assert obj.freed and log == [] and w.rcu.has_ready(1)
    with pytest.raises(UseAfterFree, match=r"in spin_lock_bh\(&thing0->lock\) by CPU1/softirq"):
        softirq(w, 1)


# --- reuse: the same object, constructor not run again ----------------------


def test_a_freed_object_goes_to_the_next_alloc_with_its_lock_still_initialised() -> None:
    w = make_world()
    ctor_runs: list[str] = []
    cache = cache_of(typesafe=True, ctor_runs=ctor_runs)
    obj = alloc(w, cache)
    free(w, cache, obj)
    again = alloc(w, cache, cpu=1)
    assert again is obj and ctor_runs == ["thing0"]
    assert obj.lock.initialised and obj.list.initialised
    # The slab was kept: no rcu_free_slab is left to free it under the new owner.
    assert w.rcu.pending() == [] and obj.slab_rcu is None
    grace_period(w)
    softirq(w, 0)
    run_task(w, lock_it(obj), cpu=1)
    assert not obj.freed and w.reports == []


def test_after_rcu_free_slab_the_next_alloc_gets_a_new_slab_and_runs_the_ctor() -> None:
    w = make_world()
    ctor_runs: list[str] = []
    cache = cache_of(typesafe=True, ctor_runs=ctor_runs)
    obj = alloc(w, cache)
    free_and_release(w, cache, obj)
    fresh = alloc(w, cache)
    assert fresh is not obj and ctor_runs == ["thing0", "thing1"]
    assert fresh.slab is not obj.slab and not fresh.freed


def test_alloc_prefers_the_most_recently_freed_object() -> None:
    w = make_world()
    cache = cache_of(typesafe=True)
    first, second = alloc(w, cache), alloc(w, cache)
    free(w, cache, first)
    free(w, cache, second)
    assert alloc(w, cache) is second
    assert [cb.label for cb in w.rcu.pending()] == ["rcu_free_slab(P0: thing0)"]


def test_a_reused_object_freed_again_waits_a_grace_period_from_the_second_free() -> None:
    w = make_world()
    cache = cache_of(typesafe=True)
    obj = alloc(w, cache)
    free(w, cache, obj)
    grace_period(w)  # the first free's grace period is over ...
    alloc(w, cache)  # ... but the slab was kept and reused
    free(w, cache, obj, cpu=1)
    assert not w.rcu.has_ready(0) and not w.rcu.has_ready(1)
    softirq(w, 1)
    assert not obj.freed
    grace_period(w)
    softirq(w, 1)
    assert obj.freed


# --- plain cache: poisoned at once ------------------------------------------


def test_a_plain_cache_poisons_the_object_at_kmem_cache_free() -> None:
    w = make_world()
    cache = cache_of(typesafe=False)
    obj = alloc(w, cache)
    free(w, cache, obj)
    assert obj.freed and w.rcu.pending() == [] and w.allocator.live == {}
    with pytest.raises(
        UseAfterFree,
        match=r"use-after-free in spin_lock_bh\(&thing0->lock\) .* freed by CPU0/task:free in "
        r"kmem_cache_free",
    ):
        run_task(w, lock_it(obj), cpu=1, label="stale")


def test_a_plain_cache_object_is_fine_to_lock_while_allocated() -> None:
    w = make_world()
    cache = cache_of(typesafe=False)
    obj = alloc(w, cache)
    run_task(w, lock_it(obj), cpu=1)
    assert w.reports == [] and not obj.freed


# --- double free --------------------------------------------------------------


def test_kmem_cache_free_twice_is_a_double_free() -> None:
    w = make_world()
    cache = cache_of(typesafe=True)
    obj = alloc(w, cache)
    free(w, cache, obj)
    with pytest.raises(
        DoubleFree,
        match=r"BUG_ON\(object == fp\): kmem_cache_free\(thing, thing0\) of an object already",
    ):
        free(w, cache, obj, cpu=1)


def test_kmem_cache_free_twice_on_a_plain_cache_is_a_kasan_double_free() -> None:
    w = make_world()
    cache = cache_of(typesafe=False)
    obj = alloc(w, cache)
    free(w, cache, obj)
    with pytest.raises(
        DoubleFree, match=r"^BUG: KASAN: double-free in kmem_cache_free\(thing, thing0\)"
    ):
        free(w, cache, obj, cpu=1)


def test_free_alloc_free_is_no_double_free() -> None:
    w = make_world()
    cache = cache_of(typesafe=True)
    obj = alloc(w, cache)
    free(w, cache, obj)
    assert alloc(w, cache) is obj
    free(w, cache, obj)
    assert w.reports == []


# --- leak ---------------------------------------------------------------------


def test_an_object_never_freed_is_a_leak() -> None:
    w = make_world()
    cache = cache_of(typesafe=True)
    alloc(w, cache)
    with pytest.raises(Leak, match=r"^leak: P0 \(slab of thing: thing0,"):
        check_leaks(w)


def test_an_object_freed_and_its_slab_released_is_no_leak() -> None:
    w = make_world()
    cache = cache_of(typesafe=True)
    obj = alloc(w, cache)
    free_and_release(w, cache, obj)
    check_leaks(w)
    assert w.reports == [] and cache.objects == [] and cache.free == []
