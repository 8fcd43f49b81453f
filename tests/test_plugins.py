"""Designs registered from outside the package, and the errors a broken one gets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_helpers import (
    BAD_KNOWN_PLUGIN,
    CRASHING_PLUGIN,
    GOOD_PLUGIN,
    MISSING_HOOK_PLUGIN,
    install_plugin,
)

from designs.base import DesignError
from designs.registry import load_designs

ROOT = Path(__file__).resolve().parent.parent


def test_builtin_designs_are_found() -> None:
    assert {"upstream-6.4", "hugh-hh", "full-page-6.8"} <= set(load_designs())


def test_entry_point_design_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(
        tmp_path, "oot_design", GOOD_PLUGIN, "out-of-tree = oot_design:OutOfTreeUpstream"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    designs = load_designs()
    assert designs["out-of-tree"].__module__ == "oot_design"


def test_plugin_missing_a_hook_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, "broken_design", MISSING_HOOK_PLUGIN, "broken = broken_design:Broken")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DesignError, match="hook 'tlb_remove_table' is missing") as info:
        load_designs()
    assert "broken-plugin" in str(info.value) and "broken_design:Broken" in str(info.value)


def test_plugin_naming_no_property_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, "badknown", BAD_KNOWN_PLUGIN, "bad = badknown:BadKnown")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DesignError, match="'known' names 'use-after-fre', which is no property"):
        load_designs()


def test_plugin_that_does_not_import_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, "noimport", "import does_not_exist\n", "gone = noimport:Gone")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(DesignError, match="failed to load: ModuleNotFoundError"):
        load_designs()


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(tmp_path), HYPOTHESIS_PROFILE="smoke")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "tests" / "test_verdicts.py"),
            "-q",
            "-n",
            "0",
            # A failure the plumbing finds is no finding of the project's.
            "--replay-dir",
            str(tmp_path / "replays"),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_entry_point_design_runs_in_the_matrix(tmp_path: Path) -> None:
    install_plugin(
        tmp_path, "oot_design", GOOD_PLUGIN, "out-of-tree = oot_design:OutOfTreeUpstream"
    )
    done = _pytest(tmp_path, "--design", "out-of-tree")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 passed" not in done.stdout  # early-reuse is not applicable: 9 run, 1 skipped
    assert "9 passed, 1 skipped" in done.stdout
    table_row = next(line for line in done.stdout.splitlines() if line.startswith("out-of-tree"))
    assert table_row.split()[1:] == ["held"] * 8 + ["n/a", "held"]


def test_a_crashing_hook_fails_its_tests_and_the_table_still_prints(tmp_path: Path) -> None:
    install_plugin(
        tmp_path, "crashing_design", CRASHING_PLUGIN, "crashing = crashing_design:Crashing"
    )
    done = _pytest(tmp_path, "--design", "crashing")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "bug in the plugin" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("crashing "))
    assert row.split()[1:] == ["ERROR"] * 8 + ["n/a", "ERROR"]
    assert "crashing: not measured: RuntimeError: bug in the plugin" in done.stdout


def test_broken_plugin_stops_the_run_with_its_reason(tmp_path: Path) -> None:
    install_plugin(tmp_path, "broken_design", MISSING_HOOK_PLUGIN, "broken = broken_design:Broken")
    done = _pytest(tmp_path)
    assert done.returncode == 4  # pytest's usage error
    assert "hook 'tlb_remove_table' is missing" in done.stderr


@pytest.mark.parametrize(
    ("option", "value", "listed"),
    [("--design", "hugh-xx", "hugh-hh"), ("--property", "deadlocks", "deadlock")],
)
def test_unknown_name_is_a_usage_error_listing_the_valid_ones(
    tmp_path: Path, option: str, value: str, listed: str
) -> None:
    done = _pytest(tmp_path, option, value)
    assert done.returncode == 4
    assert f"{option} {value!r}: no such" in done.stderr
    assert listed in done.stderr
