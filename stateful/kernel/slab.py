"""kmem caches: slab objects, and what SLAB_TYPESAFE_BY_RCU promises (and does not).

The model takes SLUB's worst case: one object per slab, so freeing an object
empties its slab, and an empty slab may go back to the page allocator. A
slab is a page from the page allocator (`w.allocator`), so the leak check
and the use-after-free check of pages cover it.

Plain cache: `kmem_cache_free` poisons the object and frees its slab at once;
any later access is a use-after-free (KASAN).

SLAB_TYPESAFE_BY_RCU cache: a freed object stays valid memory of its type
(its lock and list can be taken and read, no report) until its slab goes
back to the page allocator, which SLUB defers with
`call_rcu(&slab->rcu_head, rcu_free_slab)` on the CPU that freed the last
object. When that callback has run, the memory is poisoned and every access
through a stale pointer is a use-after-free. Before that, the object may be
handed to a new owner at once, without running the constructor again: the
constructor runs only when a new slab is allocated.

What SLUB allows for an emptied slab is either "kept" (on a partial list; the
object may be reallocated at once) or "discarded" (rcu_free_slab queued; its
objects are no longer allocatable; the memory returns after a grace period).
The model does not draw that choice: it defers it to the first event that
tells the two apart, deterministically:
  - `kmem_cache_free` always queues rcu_free_slab (the slab was discarded);
  - if `kmem_cache_alloc` comes before that callback has run, it takes the
    most recently freed such object and the queued callback is withdrawn:
    in that run the slab was kept, and rcu_free_slab was never queued;
  - otherwise the callback frees the slab after its grace period.
Every run is therefore one SLUB could have taken, and it covers both "object
reused at once" and "slab memory returned one grace period after the free,
while callbacks queued elsewhere have not run yet". What it leaves out is a
slab kept empty for longer and reused or discarded later; a stale access
there is no better off than in the discarded case, which the model runs, so
no bug of that kind is lost: at worst it is reported as a use-after-free
where SLUB could also have shown a reuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Steps
from stateful.kernel.memory import KObject, Page, free_page
from stateful.kernel.rcu import RcuHead, call_rcu
from stateful.violations import DoubleFree

# A constructor: kernel code run on a new object inside kmem_cache_alloc
# (allocate_slab -> setup_object), before anyone else can see the object.
Ctor = Callable[[Any], Steps[None]]


@define(eq=False, repr=False)
class SlabObject(KObject):
    """An object of a kmem cache; subclass it for a struct with locks and lists.

    `freed` is what KASAN checks (World.access): for a typesafe object it is
    set only when its slab goes back to the page allocator. `allocated` says
    whether an owner holds it (between kmem_cache_alloc and kmem_cache_free).
    """

    # How kernel code names a pointer to one ("pt" for pt->lock); default: the cache's name.
    prefix: ClassVar[str] = ""
    cache: KmemCache | None = None
    slab: Page | None = None
    allocated: bool = False
    freed_by: str = ""  # the last kmem_cache_free, for reports
    # The queued rcu_free_slab of a typesafe object, while its slab is discarded.
    slab_rcu: RcuHead | None = None


@define(eq=False)
class KmemCache:
    name: str
    typesafe_by_rcu: bool
    ctor: Ctor | None = None
    object_type: type[SlabObject] = SlabObject
    # Objects whose slab is still in memory, allocated or not.
    objects: list[SlabObject] = field(factory=list)
    # Free objects of a typesafe cache whose slab has not gone back yet, last freed last.
    free: list[SlabObject] = field(factory=list)
    slabs_made: int = 0

    def __repr__(self) -> str:
        return self.name


def kmem_cache_create(
    name: str,
    object_type: type[SlabObject] = SlabObject,
    typesafe_by_rcu: bool = False,
    ctor: Ctor | None = None,
) -> KmemCache:
    """kmem_cache_create(name, sizeof(struct ...), 0, flags, ctor): at boot, not a step.

    `object_type` stands for the object size: it is the struct the cache holds.
    """
    return KmemCache(name, typesafe_by_rcu, ctor, object_type)


def _run_inline(steps: Steps[None]) -> None:
    """Run a constructor to its end inside the current step: nobody can see the object yet."""
    for yielded in steps:
        if yielded is not None:
            raise RuntimeError(f"a kmem_cache constructor cannot block: {yielded}")


def _withdraw_rcu_free_slab(obj: SlabObject) -> None:
    """The slab was kept after all: take its rcu_free_slab back off the CPU's queue."""
    w = current.world()
    head = obj.slab_rcu
    assert head is not None
    for queue in w.rcu.queues.values():
        for cb in queue:
            if cb.head is head:
                queue.remove(cb)
                head.queued = False
                obj.slab_rcu = None
                return
    raise AssertionError(f"{obj}: rcu_free_slab is not queued, yet its slab is not freed")


def kmem_cache_alloc(cache: KmemCache) -> Steps[Any]:
    """kmem_cache_alloc(cache, GFP_KERNEL): not made to fail here. One step."""
    w = current.world()
    ctx = current.context()
    if cache.free:
        # SLUB hands out the most recently freed object first; in a typesafe
        # cache that is the same memory, still a valid object of the type,
        # so the constructor is not run again.
        obj = cache.free.pop()
        _withdraw_rcu_free_slab(obj)
        obj.allocated = True
        w.trace_step(
            f"kmem_cache_alloc({cache}) -> {obj} (reused: freed by {obj.freed_by}; "
            f"slab {obj.slab} kept, no rcu_free_slab)"
        )
        yield None
        return obj
    slab = w.allocator.alloc("slab")
    prefix = cache.object_type.prefix or cache.name
    obj = cache.object_type(name=f"{prefix}{cache.slabs_made}", cache=cache, slab=slab)
    cache.slabs_made += 1
    slab.purpose = f"slab of {cache.name}: {obj}"
    slab.flags.add("Slab")
    obj.allocated = True
    cache.objects.append(obj)
    w.trace_step(f"kmem_cache_alloc({cache}) -> {obj} (new slab {slab})")
    if cache.ctor is not None:
        ctx.depth += 1
        try:
            _run_inline(cache.ctor(obj))
        finally:
            ctx.depth -= 1
    yield None
    return obj


def kmem_cache_free(cache: KmemCache, obj: SlabObject) -> Steps[None]:
    """kmem_cache_free(cache, obj): the slab empties (one object per slab). One step."""
    w = current.world()
    ctx = current.context()
    if obj.freed and not cache.typesafe_by_rcu:
        # ____kasan_slab_free finds the object poisoned: a double-free report.
        w.report(
            DoubleFree,
            f"BUG: KASAN: double-free in kmem_cache_free({cache}, {obj}): it was freed by "
            f"{obj.freed_where}",
            where=f"kmem_cache_free({cache}, {obj})",
        )
    w.access(obj, f"kmem_cache_free({cache}, {obj})")
    if not obj.allocated:
        # A SLAB_TYPESAFE_BY_RCU object: KASAN skips such a cache, and SLUB's
        # freelist check sees the object it is handed already at the head of
        # the freelist (one object per slab here).
        w.report(
            DoubleFree,
            f"kernel BUG at mm/slub.c: set_freepointer: BUG_ON(object == fp): "
            f"kmem_cache_free({cache}, {obj}) of an object already freed by {obj.freed_by}",
            where=f"kmem_cache_free({cache}, {obj})",
        )
    assert obj.cache is cache and obj.slab is not None, f"{obj} is not from {cache}"
    slab = obj.slab
    obj.allocated = False
    obj.freed_by = f"{ctx!r} at step {w.steps}"
    w.trace_step(f"kmem_cache_free({cache}, {obj})")
    if not cache.typesafe_by_rcu:
        # The slab goes back at once: poison the object with it, in this step.
        obj.freed = True
        obj.freed_where = f"{ctx!r} in kmem_cache_free at step {w.steps}"
        cache.objects.remove(obj)
        yield from free_page(slab)
        return
    cache.free.append(obj)

    def rcu_free_slab(head: RcuHead) -> Steps[None]:
        # The object is poisoned in the same step as its slab page is freed.
        cb_ctx = current.context()
        cache.free.remove(obj)
        cache.objects.remove(obj)
        obj.slab_rcu = None
        obj.freed = True
        obj.freed_where = (
            f"{cb_ctx!r} in rcu_free_slab({slab}) at step {w.steps}, a grace period after "
            f"kmem_cache_free by {obj.freed_by}"
        )
        yield from free_page(slab)

    obj.slab_rcu = RcuHead(f"{slab}(slab)->rcu_head", container=slab)
    yield from call_rcu(obj.slab_rcu, rcu_free_slab, f"rcu_free_slab({slab}: {obj})")


__all__ = [
    "Ctor",
    "KmemCache",
    "SlabObject",
    "kmem_cache_alloc",
    "kmem_cache_create",
    "kmem_cache_free",
]
