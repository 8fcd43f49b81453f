"""Finds the designs: modules of this package, and the entry-point group `pgfrag.designs`.

An entry point names a Design subclass (`mydesign = mypkg.mod:MyDesign`) or a
module that defines exactly one. Each is validated on load; a broken plugin
is refused with a message that names it and what is wrong.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from types import ModuleType

from designs.base import Design, DesignError, validate

ENTRY_POINT_GROUP = "pgfrag.designs"
_NOT_DESIGNS = {"base", "registry"}


def _designs_in(module: ModuleType) -> list[type[Design]]:
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Design)
        and obj is not Design
        and obj.__module__ == module.__name__
    ]


def _builtin() -> list[tuple[type[Design], str]]:
    import designs

    found = []
    for info in sorted(pkgutil.iter_modules(designs.__path__), key=lambda m: m.name):
        if info.name in _NOT_DESIGNS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"designs.{info.name}")
        found.extend((cls, f"designs/{info.name}.py") for cls in _designs_in(module))
    return found


def _plugins() -> list[tuple[type[Design], str]]:
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point '{ep.name} = {ep.value}' in group {ENTRY_POINT_GROUP}"
        try:
            obj = ep.load()
        except Exception as exc:  # a plugin that cannot even import
            raise DesignError(f"{origin} failed to load: {type(exc).__name__}: {exc}") from exc
        if isinstance(obj, ModuleType):
            classes = _designs_in(obj)
            if len(classes) != 1:
                raise DesignError(
                    f"{origin}: module defines {len(classes)} Design subclasses; name one"
                )
            obj = classes[0]
        found.append((obj, origin))
    return found


def load_designs() -> dict[str, type[Design]]:
    """name -> validated Design class, built-ins first, then plugins."""
    registry: dict[str, type[Design]] = {}
    origins: dict[str, str] = {}
    for cls, origin in _builtin() + _plugins():
        validate(cls, origin)
        if cls.name in registry and registry[cls.name] is not cls:
            raise DesignError(
                f"{origin}: design name '{cls.name}' is already taken by {origins[cls.name]}"
            )
        registry[cls.name] = cls
        origins[cls.name] = origin
    return registry
