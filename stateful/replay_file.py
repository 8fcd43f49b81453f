"""Replay files: a shrunk failure kept as a small, readable, versioned JSON file.

Hypothesis's `@reproduce_failure` blob is tied to one Hypothesis version and
its example database is a cache; a replay file is neither. It holds the
rule calls of the state machine with their arguments, so it means the same
to any Hypothesis, and can be read in a mail. It names the kernel-model
version it was recorded with: the same rule calls on a changed model are
not the same interleaving, so a file from another version is refused
rather than replayed into a different story.

    {
      "format": "pgfrag-replay",
      "format_version": 1,
      "model_version": 1,
      "design": "hugh-hh",
      "property": "deadlock",
      "machine": {"ncpus": 2, ...},
      "expected": "rcu: INFO: rcu_sched self-detected stall on CPU0: ...",
      "steps": [{"rule": "page_table_alloc", "args": {"cpu": 0, ...}}, ...]
    }
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import define
from hypothesis.stateful import RULE_MARKER

from designs.base import Design
from stateful.machine import Failure, KernelMachine, MachineConfig, machine_for
from stateful.replay import Step
from stateful.replay import replay as replay_steps
from stateful.violations import PROPERTIES, Violation

FORMAT = "pgfrag-replay"
FORMAT_VERSION = 1
# The kernel model's version. Bump it with any change to the kernel model or
# to the machine's rules that changes what a recorded rule sequence does, and
# record the files in replays/ again (`pytest` writes them).
# 5: a page freed with PG_active set is a Bad page state (bad-bits), and leaks;
# 6: khugepaged retracts the tables of an mm with PGSTEs too (only KVM disables THP);
#    __free_page frees only when put_page_testzero reaches 0 (fragment bits left: the
#    page leaks); lockdep is off after its first report or a Bad page state.
# 7: two faults on one pmd (pmd_install_race): the loser pte_frees its table
#    under no spinlock; pmd_install tests and populates within one step.
MODEL_VERSION = 7

_FIELDS = ("format", "format_version", "model_version", "design", "property", "machine", "steps")


class ReplayError(Exception):
    """A replay file that cannot be used; the message names the file and why."""


@define(frozen=True)
class ReplayFile:
    design: str
    property: str
    steps: tuple[Step, ...]
    expected: str = ""  # the violation's first line, as the kernel checker words it
    machine: MachineConfig = MachineConfig()
    model_version: int = MODEL_VERSION
    # A mutant's failure (stateful/mutants/): its ID, and the hash of the
    # design's source the ID refers to. Empty for a design's own failure.
    mutant: str = ""
    design_source: str = ""

    @classmethod
    def of(cls, failure: Failure, machine: MachineConfig | None = None) -> ReplayFile:
        return cls(
            design=failure.design,
            property=failure.property,
            steps=tuple(failure.steps),
            expected=failure.message.splitlines()[0] if failure.message else "",
            machine=machine or MachineConfig(),
        )

    def to_json(self) -> str:
        head = json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "model_version": self.model_version,
                "design": self.design,
                "property": self.property,
                "machine": attrs.asdict(self.machine),
                "expected": self.expected,
                **(
                    {"mutant": {"id": self.mutant, "design_source": self.design_source}}
                    if self.mutant
                    else {}
                ),
            },
            indent=2,
        )
        # One step per line: a file a developer can read, diff and edit.
        steps = ",\n".join(
            f"    {json.dumps({'rule': s.rule, 'args': dict(s.args)})}" for s in self.steps
        )
        return f'{head[:-2]},\n  "steps": [\n{steps}\n  ]\n}}\n'

    @property
    def default_name(self) -> str:
        if self.mutant:
            return f"{self.mutant.replace(':', '.')}--{self.property}.json"
        return f"{self.design}--{self.property}.json"


def _fail(path: Path, problem: str) -> ReplayError:
    return ReplayError(f"replay file {path}: {problem}")


def _require(doc: Mapping[str, Any], key: str, kind: type, path: Path) -> Any:
    if key not in doc:
        raise _fail(path, f"no {key!r} field; is this a pgfrag replay file?")
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(path, f"{key!r} is {type(value).__name__}, expected {kind.__name__}")
    return value


def _machine_config(raw: Mapping[str, Any], path: Path) -> MachineConfig:
    known = {f.name: f for f in attrs.fields(MachineConfig)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise _fail(path, f"'machine' has unknown settings {unknown}; valid: {sorted(known)}")
    for key, value in raw.items():
        default = getattr(MachineConfig(), key)
        if type(value) is not type(default):
            raise _fail(
                path, f"machine setting {key!r} is {value!r}, expected a {type(default).__name__}"
            )
    return MachineConfig(**raw)


def _steps(raw: list[Any], path: Path) -> tuple[Step, ...]:
    rules = {
        name: set(rule.arguments)
        for name in dir(KernelMachine)
        if (rule := getattr(getattr(KernelMachine, name, None), RULE_MARKER, None)) is not None
    }
    steps = []
    for n, entry in enumerate(raw, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("rule"), str):
            raise _fail(path, f"step {n} is not {{'rule': NAME, 'args': {{...}}}}: {entry!r}")
        rule, args = entry["rule"], entry.get("args", {})
        if rule not in rules:
            raise _fail(
                path, f"step {n}: no rule named {rule!r}; rules: {', '.join(sorted(rules))}"
            )
        if not isinstance(args, dict) or not all(
            isinstance(v, int) and isinstance(k, str) for k, v in args.items()
        ):
            raise _fail(path, f"step {n} ({rule}): args must map names to integers: {args!r}")
        if set(args) != rules[rule]:
            raise _fail(
                path,
                f"step {n} ({rule}): arguments {sorted(args)}; the rule takes "
                f"{sorted(rules[rule])}",
            )
        steps.append(Step.of(rule, args))
    return tuple(steps)


def load_replay(path: Path) -> ReplayFile:
    """Read and check a replay file; ReplayError names what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(doc, dict):
        raise _fail(path, "not a JSON object; is this a pgfrag replay file?")
    for key in _FIELDS:
        if key not in doc:
            raise _fail(path, f"no {key!r} field; is this a pgfrag replay file?")
    if doc["format"] != FORMAT:
        raise _fail(path, f"format is {doc['format']!r}, not {FORMAT!r}")
    if _require(doc, "format_version", int, path) != FORMAT_VERSION:
        raise _fail(
            path,
            f"file format version {doc['format_version']}; this pgfrag reads version "
            f"{FORMAT_VERSION}",
        )
    version = _require(doc, "model_version", int, path)
    design = _require(doc, "design", str, path)
    prop = _require(doc, "property", str, path)
    if version != MODEL_VERSION:
        raise _fail(
            path,
            f"recorded with kernel model version {version}, and this pgfrag's model is "
            f"version {MODEL_VERSION}: the same rule calls would not be the same "
            f"interleaving. Find it again with `pgfrag --design {design} --property {prop}`, "
            f"which saves a new replay file",
        )
    if prop not in PROPERTIES:
        raise _fail(path, f"no property named {prop!r}; valid: {', '.join(PROPERTIES)}")
    machine = _machine_config(_require(doc, "machine", dict, path), path)
    steps = _steps(_require(doc, "steps", list, path), path)
    expected = doc.get("expected", "")
    if not isinstance(expected, str):
        raise _fail(path, f"'expected' is {type(expected).__name__}, expected str")
    mutant = doc.get("mutant", {})
    if "mutant" in doc and not (
        isinstance(mutant, dict)
        and all(isinstance(mutant.get(k), str) and mutant.get(k) for k in ("id", "design_source"))
    ):
        raise _fail(path, f"'mutant' must be {{'id': ID, 'design_source': HASH}}: {mutant!r}")
    return ReplayFile(
        design,
        prop,
        steps,
        expected,
        machine,
        version,
        mutant.get("id", ""),
        mutant.get("design_source", ""),
    )


def shown_path(path: Path, root: Path) -> str:
    """A path as a developer would type it from the checkout at root."""
    path = path.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def save_replay(replay: ReplayFile, folder: Path) -> Path:
    """Write replay under folder; never overwrite a different file.

    The file is `<design>--<property>.json`. If that name holds anything
    else (another interleaving, or a file that does not load), the new one
    goes beside it as `<design>--<property>--<hash>.json`: nothing is lost.
    """
    folder.mkdir(parents=True, exist_ok=True)
    text = replay.to_json()
    path = folder / replay.default_name
    if path.exists():
        try:
            same = path.read_text(encoding="utf-8") == text
        except (OSError, UnicodeDecodeError):
            same = False
        if same:
            return path
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        path = folder / f"{replay.default_name[: -len('.json')]}--{digest}.json"
        if path.exists():
            return path  # the name is the content's hash: this very file
    # Write then rename, so that a reader (another pytest-xdist worker) never
    # sees half a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


@define
class ReplayCheck:
    """What a replay file did on one design."""

    path: Path
    replay: ReplayFile
    design: str
    violation: Violation | None  # the file's property: it still happens
    other: Violation | None  # another fatal violation ended the run first
    warnings: list[Violation]  # warning-class reports on the way (lockdep, WARN_ON)
    skipped_at: list[int]  # steps (1-based) whose precondition does not hold on this design
    diagram: str

    @property
    def as_recorded(self) -> bool:
        """Every step ran: the verdict is about the recorded interleaving."""
        return not self.skipped_at

    def summary(self) -> str:
        prop, n = self.replay.property, len(self.replay.steps)
        where = self.design
        if self.design.split(" with mutant ")[0] != self.replay.design:
            where = f"{self.design} (recorded on {self.replay.design})"
        head = f"{self.path} on {where}: {prop}"
        named = [f"{i} ({self.replay.steps[i - 1].rule})" for i in self.skipped_at]
        listed = ", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else "".join(named)
        skipped = f"{'steps' if len(named) > 1 else 'step'} {listed}"
        if self.violation is not None:
            first = str(self.violation).splitlines()[0]
            worded = "" if first == self.replay.expected else " (worded differently)"
            line = f"{head} STILL HAPPENS{worded}: {first}"
        elif not self.as_recorded:
            line = (
                f"{head} CANNOT BE TOLD: {skipped} of {n} cannot run on {self.design} "
                f"(the rule's precondition does not hold there), so this is not the "
                f"recorded interleaving"
            )
        elif self.other is not None:
            first = str(self.other).splitlines()[0]
            line = f"{head} did not happen: the run ended first in {self.other.property}: {first}"
        else:
            line = f"{head} no longer happens: the {n} steps ran and the machine drained clean"
        notes = []
        if self.skipped_at and self.violation is not None:
            notes.append(f"{skipped} skipped: the rule's precondition does not hold")
        if self.warnings:
            notes.append("also reported: " + ", ".join(w.property for w in self.warnings))
        return line + "".join(f"\n  ({note})" for note in notes)


def check_replay(path: Path, replay: ReplayFile, design_cls: type[Design]) -> ReplayCheck:
    """Run the file's rule calls on design_cls, hunting the file's property."""
    machine_cls = machine_for(design_cls, replay.property, replay.machine)
    outcome = replay_steps(machine_cls, replay.steps)
    world = outcome.machine.world
    return ReplayCheck(
        path=path,
        replay=replay,
        design=design_cls.name
        + (f" with mutant {design_cls.mutant_id}" if hasattr(design_cls, "mutant_id") else ""),
        violation=outcome.violation,
        other=outcome.other,
        warnings=list(world.reports),
        skipped_at=outcome.skipped_at,
        diagram=world.trace.render(world.config.ncpus),
    )
