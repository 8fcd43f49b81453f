"""The measure of one design: the memory workload and every contention configuration."""

from __future__ import annotations

from designs.base import Design
from stateful.measures.contention import _contention
from stateful.measures.harness import _new_world, _reported
from stateful.measures.memory import _MemoryRun
from stateful.measures.results import Measures
from stateful.measures.workloads import CONTENTION_CONFIGS, memory_workload

DEFER_FALLBACK = "pte_free_defer: not offered; ran pte_free_tlb instead"


def measure(design_cls: type[Design], seed: int = 0) -> Measures:
    """Run design_cls through the memory/reuse workload and the contention workloads."""
    mem = _MemoryRun(design_cls, _new_world(design_cls, ncpus=1))
    stop = mem.run(memory_workload(seed))
    contention = []
    substituted = 0
    for ncpus, nmms in CONTENTION_CONFIGS:
        result, n = _contention(design_cls, seed, ncpus, nmms)
        contention.append(result)
        substituted += n
    unsupported = ()
    if mem.substituted or substituted:
        unsupported = (
            f"{DEFER_FALLBACK} ({mem.substituted} times in the memory workload, "
            f"{substituted} in the contention workloads)",
        )
    return Measures(
        design=design_cls.name,
        seed=seed,
        memory=mem.memory(),
        reuse=mem.reuse.result(),
        contention=tuple(contention),
        unsupported=unsupported,
        stop=stop,
        reported=_reported(mem.world),
    )
