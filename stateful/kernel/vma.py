"""vm_area_struct: a mapping of an mm, its per-VMA lock, and its unlinking.

The per-VMA lock (CONFIG_PER_VMA_LOCK, on s390 since v6.4) lets a page
fault run under a read lock of its VMA alone, with no mmap_lock:
`lock_vma_under_rcu` takes `vma->vm_lock->lock` with a read trylock, and is
refused while the VMA is write-locked (its `vm_lock_seq` equals the mm's
`mm_lock_seq`) or its lock is contended; the fault then falls back to
`mmap_read_lock`. A writer, holding mmap_lock for write, marks the VMA with
`vma_start_write`, which first waits for the VMA's readers; the mark lasts
until the mmap_lock write side ends (`vma_end_write_all`, stateful/kernel/mm.py).

A VMA that maps a file is linked in the file's i_mmap tree; exit_mmap and
munmap unlink it (`unlink_file_vma`, under `i_mmap_lock_write`) before
they free the page tables under it.
"""

from __future__ import annotations

from attrs import define, field

from stateful.kernel import current
from stateful.kernel.cpu import Steps
from stateful.kernel.file import AddressSpace, i_mmap_lock_write, i_mmap_unlock_write
from stateful.kernel.memory import KObject
from stateful.kernel.mm import MMStruct
from stateful.kernel.rwsem import RwSemaphore, down_write, up_read


@define(eq=False, repr=False)
class VmArea(KObject):
    mm: MMStruct = field(default=None)
    file: AddressSpace | None = None  # None: anonymous memory
    vm_lock: RwSemaphore = field(default=None)  # vma->vm_lock->lock
    vm_lock_seq: int = -1
    detached: bool = False  # munmap took it out of the mm's tree

    @classmethod
    def create(cls, name: str, mm: MMStruct, file: AddressSpace | None) -> VmArea:
        vma = cls(name=name, mm=mm, file=file)
        vma.vm_lock = RwSemaphore(f"&{name}->vm_lock", "&vma->vm_lock->lock", container=vma)
        if file is not None:
            # vma_link / dup_mmap: under i_mmap_lock_write, in the kernel.
            file.i_mmap.append(vma)
        return vma

    def split(self, name: str) -> VmArea:
        """__split_vma: a new VMA for part of this one's range; vm_area_dup
        copies vm_lock_seq, so the new one is write-locked as this one is.
        The caller holds the file's i_mmap_lock_write to link it."""
        piece = VmArea.create(name, self.mm, self.file)
        piece.vm_lock_seq = self.vm_lock_seq
        return piece


def lock_vma_under_rcu(vma: VmArea) -> Steps[bool]:
    """vma_start_read: the fault's read lock of the VMA, or NULL (the caller
    falls back to mmap_read_lock) while it is write-locked or contended."""
    w = current.world()
    mm = vma.mm
    call = f"lock_vma_under_rcu({mm})"
    w.access(mm, call)
    w.access(vma, call)
    locked = (
        not vma.detached
        and vma.vm_lock_seq != mm.mm_lock_seq
        and vma.vm_lock.try_read(current.context())
    )
    w.trace_step(f"{call} -> {vma if locked else 'NULL'}")
    yield None
    return locked


def vma_end_read(vma: VmArea) -> Steps[None]:
    yield from up_read(vma.vm_lock, f"vma_end_read({vma})")


def vma_start_write(vma: VmArea) -> Steps[None]:
    """Under mmap_write_lock: wait for the VMA's readers, then mark it
    write-locked until the mmap_lock write side ends."""
    mm = vma.mm
    if vma.vm_lock_seq == mm.mm_lock_seq:
        return  # already marked under this mmap_write_lock
    yield from down_write(vma.vm_lock, f"vma_start_write({vma})")
    vma.vm_lock_seq = mm.mm_lock_seq
    vma.vm_lock.release(current.context(), write=True)


def unlink_file_vma(vma: VmArea) -> Steps[None]:
    """Take the VMA out of its file's i_mmap tree, under i_mmap_lock_write:
    from here on nobody can find this mm through the file."""
    mapping = vma.file
    if mapping is None:
        return
    w = current.world()

    def body() -> Steps[None]:
        yield from i_mmap_lock_write(mapping)
        mapping.i_mmap.remove(vma)
        yield from i_mmap_unlock_write(mapping)

    yield from w.traced(f"unlink_file_vma({vma})", body())


def vm_area_free(vma: VmArea) -> None:
    """remove_vma: the struct goes back to its cache (no step of its own)."""
    w = current.world()
    w.access(vma, f"vm_area_free({vma})")
    vma.freed = True
    vma.freed_where = f"{current.context()!r} in remove_vma at step {w.steps}"
