"""A mapped file's address_space: its i_mmap tree and the i_mmap_rwsem over it.

Every VMA that maps the file is linked in `i_mmap` (the interval tree, a
list here: the model maps whole files) from mmap until `unlink_file_vma`.
Walking the tree under `i_mmap_lock_read` is how khugepaged's
`retract_page_tables` finds the VMAs, and so the mms, whose page tables it
may take: it holds no mmap_lock and no reference on those mms. What keeps
such an mm's struct and page tables there meanwhile is that its exit_mmap,
and any munmap, must take `i_mmap_lock_write` to unlink the VMA before it
frees the page tables under it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import define, field

from stateful.kernel.cpu import Steps
from stateful.kernel.memory import KObject
from stateful.kernel.rwsem import RwSemaphore, down_read, down_write, up_read, up_write

if TYPE_CHECKING:
    from stateful.kernel.vma import VmArea


@define(eq=False, repr=False)
class AddressSpace(KObject):
    i_mmap_rwsem: RwSemaphore = field(default=None)
    i_mmap: list[VmArea] = field(factory=list)

    @classmethod
    def create(cls, name: str) -> AddressSpace:
        mapping = cls(name=name)
        mapping.i_mmap_rwsem = RwSemaphore(
            f"&{name}->i_mmap_rwsem", "&mapping->i_mmap_rwsem", container=mapping
        )
        return mapping


def i_mmap_lock_read(mapping: AddressSpace) -> Steps[None]:
    yield from down_read(mapping.i_mmap_rwsem, f"i_mmap_lock_read({mapping})")


def i_mmap_unlock_read(mapping: AddressSpace) -> Steps[None]:
    yield from up_read(mapping.i_mmap_rwsem, f"i_mmap_unlock_read({mapping})")


def i_mmap_lock_write(mapping: AddressSpace) -> Steps[None]:
    yield from down_write(mapping.i_mmap_rwsem, f"i_mmap_lock_write({mapping})")


def i_mmap_unlock_write(mapping: AddressSpace) -> Steps[None]:
    yield from up_write(mapping.i_mmap_rwsem, f"i_mmap_unlock_write({mapping})")
