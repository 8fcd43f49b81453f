"""A mutant re-created from its ID and the hash of its design's source (a replay file's)."""

from __future__ import annotations

from designs.base import Design
from stateful.mutants.build import mutant_class
from stateful.mutants.derive import find
from stateful.mutants.source import SourceError, source_hash


class MutantError(Exception):
    """The mutant a file names cannot be re-created here; the message says why."""


def resolve(design_cls: type[Design], mutant_id: str, design_source: str) -> type[Design]:
    try:
        now = source_hash(design_cls)
    except SourceError as exc:
        raise MutantError(str(exc)) from None
    if now != design_source:
        raise MutantError(
            f"mutant {mutant_id}: the source of design {design_cls.name!r} has changed since "
            f"(hash {design_source}, now {now}), so the ID may name another line; run "
            f"`pgfrag --mutants {design_cls.name}` again for a new file"
        )
    mutant = find(design_cls, mutant_id)
    if mutant is None:
        raise MutantError(f"design {design_cls.name!r} has no mutant {mutant_id}")
    return mutant_class(design_cls, mutant)
