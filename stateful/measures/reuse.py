"""The reuse-delay: when a freed 2K table could be handed out again.

From the start of the operation that frees a table until that half could be
handed out again (its page went back to the page allocator, or it is on a
live pgtable_list with its AA, PP and HH bits clear), in kernel steps
(`World.steps`) and in operations of the workload.
"""

from __future__ import annotations

from attrs import define, field

from designs.base import AA, HH, PP
from stateful.kernel.memory import Table
from stateful.measures.results import ReuseDelay, _mean


def _usable(table: Table) -> bool:
    """Could page_table_alloc hand this freed table out again?"""
    page = table.page
    if page.freed:
        return True  # back in the page allocator
    head = page.list_of
    # Any list a page table page is on is a list page_table_alloc takes from:
    # mm->context.pgtable_list, or a design's own (a static one has no
    # container). A list inside a freed mm is gone with it.
    if head is None or (head.container is not None and head.container.freed):
        return False
    return all(page.refbyte & ((AA | PP | HH) << half) == 0 for half in table.halves)


@define
class _ReuseTracker:
    # (table, step its free began, operations done before it)
    pending: list[tuple[Table, int, int]] = field(factory=list)
    step_delays: list[int] = field(factory=list)
    op_delays: list[int] = field(factory=list)
    frees: int = 0

    def freed(self, table: Table, step: int, op: int) -> None:
        self.frees += 1
        self.pending.append((table, step, op))

    def check(self, step: int, op: int) -> None:
        """After every step: a table can be reused for a moment and taken again."""
        if not self.pending:
            return
        still = []
        for entry in self.pending:
            table, began, op_began = entry
            if _usable(table):
                self.step_delays.append(step - began)
                self.op_delays.append(op - op_began)
            else:
                still.append(entry)
        self.pending = still

    def result(self) -> ReuseDelay:
        return ReuseDelay(
            frees=self.frees,
            mean=_mean(self.step_delays),
            max=max(self.step_delays, default=None),
            mean_ops=_mean(self.op_delays),
            max_ops=max(self.op_delays, default=None),
            never=len(self.pending),
        )
