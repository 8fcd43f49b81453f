"""The cost measures: reproducible, showing what each design costs, never crashed by a bug."""

from __future__ import annotations

import pytest

from designs.full_page_6_8 import FullPage68
from designs.hugh_hh import HughHH
from designs.upstream_6_4 import Upstream64
from stateful.kernel import api as k
from stateful.kernel.mm import MMStruct
from stateful.measures import (
    CONTENTION_CONFIGS,
    MEMORY_GP_EVERY,
    MEMORY_OPS,
    Measures,
    contention_streams,
    measure,
    memory_workload,
    render_measures,
)
from tests.benchmark_helpers import load_benchmark


class GlobalPgtableLock(Upstream64):
    """upstream-6.4 with one static lock for every mm's pgtable_list instead of mm->context.lock."""

    name = "test-global-pgtable-lock"

    def __init__(self) -> None:
        # One per World, as a static lock is one per kernel.
        self.lock = k.DEFINE_SPINLOCK("pgtable_lock")

    def init_context(self, mm: k.MMStruct) -> k.Steps[None]:
        mm.context.lock = self.lock  # every use of mm->context.lock now takes the global one
        yield from k.INIT_LIST_HEAD(mm.context.pgtable_list)


class FreesTwice(Upstream64):
    """A broken design: a page whose halves are both gone is released twice."""

    name = "test-frees-twice"

    def page_table_release(self, page: k.Page, half: int = 0, mask: int = 0) -> k.Steps[None]:
        yield from k.free_page(page)
        yield from k.free_page(page)


@pytest.fixture(scope="module")
def upstream() -> Measures:
    return measure(Upstream64, seed=0)


@pytest.fixture(scope="module")
def full_page() -> Measures:
    return measure(FullPage68, seed=0)


def test_the_same_seed_gives_the_same_figures(upstream: Measures) -> None:
    assert measure(Upstream64, seed=0) == upstream
    assert memory_workload(0) == memory_workload(0)
    assert memory_workload(0) != memory_workload(1)
    assert contention_streams(0, 4, 4) == contention_streams(0, 4, 4)


def test_the_memory_workload_is_fixed_and_mixed() -> None:
    workload = memory_workload(0)
    assert len(workload) == MEMORY_OPS
    kinds = {op.kind for op in workload}
    assert kinds == {"alloc", "free", "free_tlb", "defer", "grace_period", "exit_mm"}


def test_full_page_holds_one_page_per_table_and_fragments_less(
    upstream: Measures, full_page: Measures
) -> None:
    # Every live table has a page of its own; on top of that, pages waiting for RCU.
    assert full_page.memory.held_mean == 1.0
    assert full_page.memory.mean is not None and full_page.memory.mean >= 1.0
    assert full_page.memory.peak is not None
    assert full_page.memory.peak >= full_page.memory.mean
    assert upstream.memory.held_mean is not None and upstream.memory.held_mean < 1.0
    assert upstream.memory.mean is not None and upstream.memory.mean < full_page.memory.mean
    assert full_page.memory.samples > MEMORY_OPS // 2


def test_reuse_delay_is_measured_and_every_table_comes_back(
    upstream: Measures, full_page: Measures
) -> None:
    for m in (upstream, full_page):
        assert m.reuse.frees > 100
        assert m.reuse.never == 0
        assert m.reuse.mean is not None and m.reuse.mean > 0
        assert m.reuse.max is not None and m.reuse.max >= m.reuse.mean
    # A table freed through the mmu_gather or pte_free_defer waits for the next
    # grace period, which the workload ends every MEMORY_GP_EVERY ops; full-page
    # frees its page then, or at once in page_table_free.
    assert full_page.reuse.max_ops is not None and 1 <= full_page.reuse.max_ops <= MEMORY_GP_EVERY
    assert full_page.reuse.mean_ops is not None and 0 < full_page.reuse.mean_ops < MEMORY_GP_EVERY
    assert upstream.reuse.max_ops is not None and upstream.reuse.max_ops >= 1


def test_upstream_says_it_cannot_do_pte_free_defer(upstream: Measures, full_page: Measures) -> None:
    assert any(
        "pte_free_defer: not offered; ran pte_free_tlb instead" in u for u in upstream.unsupported
    )
    assert full_page.unsupported == ()


def test_a_violation_stops_the_workload_and_says_so() -> None:
    m = measure(FreesTwice, seed=0)
    assert m.stop is not None and m.stop.property == "double-free"
    assert memory_workload(0)[m.stop.after_ops].kind == "free"
    assert "VM_BUG_ON_PAGE(page_ref_count(page) == 0)" in m.stop.message
    # Under contention another CPU may touch the freed page first.
    stopped_by = {"double-free", "use-after-free"}
    assert all(c.stop is not None and c.stop.property in stopped_by for c in m.contention)
    table = render_measures({FreesTwice.name: m})
    assert f"memory workload {m.stop}" in table


def test_hugh_hh_deadlock_stops_its_contention_runs_not_the_measure() -> None:
    m = measure(HughHH, seed=0)
    stops = [c.stop for c in m.contention if c.stop is not None]
    assert stops and all(s.property == "deadlock" for s in stops)
    assert any("lockdep" in c.reported for c in m.contention)
    assert "contention stopped by deadlock" in render_measures({HughHH.name: m})


def test_a_global_lock_spins_where_per_mm_locks_do_not(upstream: Measures) -> None:
    glob = measure(GlobalPgtableLock, seed=0)
    assert [c.stop for c in glob.contention] == [None] * len(CONTENTION_CONFIGS)
    per_mm = upstream.contention_at(4, 4)
    one = glob.contention_at(4, 4)
    # The mm's own pmd lock (MADV_DONTNEED's zap) is no lock of the designs'.
    pmd_lock = MMStruct.create("mm", False).pmd_ptl.lock_class
    assert set(one.spins) - {pmd_lock} == {"pgtable_lock"}
    assert one.spins["pgtable_lock"] > 2 * per_mm.spins["&mm->context.lock"]
    # With one mm, the global lock is the mm's lock: the two designs run step for step alike.
    glob_one, upstream_one = glob.contention_at(4, 1).spins, upstream.contention_at(4, 1).spins
    assert {c.replace("pgtable_lock", "&mm->context.lock"): n for c, n in glob_one.items()} == (
        upstream_one
    )
    # Four CPUs spin more than two on a shared lock.
    assert glob.contention_at(4, 4).total_spins > glob.contention_at(2, 4).total_spins


def test_the_table_fits_100_columns_and_names_its_command(
    upstream: Measures, full_page: Measures
) -> None:
    table = render_measures({"upstream-6.4": upstream, "full-page-6.8": full_page})
    lines = table.splitlines()
    assert lines[0] == "$ python benchmarks/measures.py --seed 0"
    assert max(len(line) for line in lines) <= 100
    row = next(line for line in lines if line.startswith("full-page-6.8") and "1.00" in line)
    assert f"{full_page.memory.mean:.2f}" in row
    assert "upstream-6.4: pte_free_defer: not offered" in table


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_benchmark("measures").main(["--seed", "2", "--design", "full-page-6.8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("$ python benchmarks/measures.py --seed 2 --design full-page-6.8\n")
    assert "full-page-6.8" in out and "upstream-6.4" not in out


def test_cli_refuses_an_unknown_design(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        load_benchmark("measures").main(["--design", "no-such-design"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown design 'no-such-design'" in err
    assert "upstream-6.4" in err and "full-page-6.8" in err
