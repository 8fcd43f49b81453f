"""The memory-waste workloads: fixed, seeded, paced; the same figures and bytes every time."""

from __future__ import annotations

from pathlib import Path

import pytest

from designs.full_page_6_8 import FullPage68
from designs.no_readd import NoReadd
from designs.upstream_6_4 import Upstream64
from stateful.kernel import api as k
from stateful.measures import WASTE_WORKLOADS, measure_waste, render_waste
from stateful.measures.plot import line_id, waste_svg
from stateful.measures.waste_workloads import WASTE_GP_EVERY, WASTE_OPS, churn, forkexit
from tests.benchmark_helpers import load_benchmark


class RemovesTwice(Upstream64):
    """A broken design: a page whose halves are both gone is freed twice."""

    name = "test-removes-twice"

    def page_table_release(self, page: k.Page, half: int = 0, mask: int = 0) -> k.Steps[None]:
        yield from k.free_page(page)
        yield from k.free_page(page)


@pytest.mark.parametrize("name", list(WASTE_WORKLOADS))
def test_each_workload_is_fixed_by_its_seed_and_paced(name: str) -> None:
    workload = WASTE_WORKLOADS[name]
    setup, ops = workload.ops(0)
    assert workload.ops(0) == (setup, ops)
    assert len(ops) == WASTE_OPS
    assert all(op.kind != "grace_period" for op in setup)
    # A grace period ends every WASTE_GP_EVERY operations; a fork's allocations
    # come with it, so forkexit may run a few over.
    gaps = [i for i, op in enumerate(ops) if op.kind == "grace_period"]
    slack = 4 if name == "forkexit" else 0
    assert gaps[0] <= WASTE_GP_EVERY - 1 + slack
    assert all(b - a <= WASTE_GP_EVERY + slack for a, b in zip(gaps, gaps[1:], strict=False))


def test_another_seed_draws_another_list() -> None:
    assert churn(0) != churn(1)
    assert forkexit(0) != forkexit(1)


def test_the_same_run_gives_the_same_series() -> None:
    first = measure_waste(NoReadd, "collapse", seed=3)
    assert measure_waste(NoReadd, "collapse", seed=3) == first
    assert len(first.ratios) == WASTE_OPS and first.stop is None and first.end is not None


@pytest.mark.parametrize("name", list(WASTE_WORKLOADS))
def test_full_page_holds_at_least_a_page_per_table(name: str) -> None:
    """One 4K page per table, and more while freed ones wait for RCU: never below 1."""
    series = measure_waste(FullPage68, name)
    assert series.stop is None
    assert min(series.values) >= 1.0
    assert series.end == 1.0


def test_a_design_without_pte_free_defer_runs_munmap_and_says_so() -> None:
    series = measure_waste(Upstream64, "collapse")
    assert series.substituted > 0
    assert f"ran munmap instead ({series.substituted} times)" in render_waste([series])


def test_a_bug_stops_the_workload_and_the_table_marks_it() -> None:
    series = measure_waste(RemovesTwice, "churn")
    assert series.stop is not None and series.stop.property == "double-free"
    assert series.end is None and len(series.ratios) < WASTE_OPS
    table = render_waste([series])
    assert "*" in table and "stopped by double-free" in table


def test_the_plot_is_the_same_bytes_fetches_nothing_and_has_a_line_per_design() -> None:
    rows = [measure_waste(cls, "grow") for cls in (Upstream64, NoReadd)]
    svg = waste_svg("grow", rows)
    assert waste_svg("grow", rows) == svg
    assert svg.startswith("<svg ") and "http" not in svg and "<?xml" not in svg
    for design in ("upstream-6.4", "no-readd"):
        assert svg.count(f'<g id="{line_id("grow", design)}"') == 1


def test_cli_prints_the_waste_tables(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--workload", "grow", "--design", "no-readd", "--design", "upstream-6.4"]
    assert load_benchmark("measures").main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "$ python benchmarks/measures.py --seed 0 --workload grow "
        "--design no-readd --design upstream-6.4\n"
    )
    assert "\nno-readd " in out and "\nupstream-6.4 " in out and "full-page-6.8" not in out


def test_cli_refuses_an_unknown_workload_listing_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        load_benchmark("measures").main(["--workload", "churm"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown workload 'churm'; valid: churn, collapse, forkexit, grow" in err


def test_cli_writes_each_plot_as_the_same_bytes(tmp_path: Path) -> None:
    args = ["--workload", "grow", "--design", "no-readd", "--plots", str(tmp_path / "a")]
    assert load_benchmark("measures").main(args) == 0
    assert load_benchmark("measures").main([*args[:-1], str(tmp_path / "b")]) == 0
    first = (tmp_path / "a" / "waste-grow.svg").read_bytes()
    assert first == (tmp_path / "b" / "waste-grow.svg").read_bytes()
    assert first.startswith(b"<?xml") and b'id="waste-grow-no-readd"' in first


def test_cli_refuses_plots_without_a_workload(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        load_benchmark("measures").main(["--plots", "somewhere"])
    assert info.value.code == 2
    assert "name at least one workload" in capsys.readouterr().err
