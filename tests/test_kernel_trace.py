"""What the kernel model writes into the race diagram, and how it is drawn.

The trace is output only: its annotations (a list's new content, an IPI on
the other CPUs) are not steps, so they change no step count, no message and
no measure.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_helpers import Script, make_world, new_page, run_task

from stateful.kernel import api as k
from stateful.kernel.lists import ListHead
from stateful.kernel.mm import MMStruct
from stateful.kernel.mmu_gather import tlb_gather_mmu
from stateful.kernel.world import World
from stateful.trace import Event, render_diagram, wrap_step


def counted(w: World) -> int:
    """The trace lines that are steps: what World.steps must equal."""
    return sum(1 for e in w.trace.events if e.kind == "step")


def test_a_list_change_shows_the_list_after_it_and_is_no_step() -> None:
    w = make_world()
    head = ListHead("mm0->context.pgtable_list")
    run_task(w, k.INIT_LIST_HEAD(head))
    p0, p1 = new_page(w), new_page(w)

    def churn() -> Script:
        yield from k.list_add(p0, head)
        yield from k.list_add_tail(p1, head)
        yield from k.list_del(p0)
        yield from k.list_del_init(p1)
        yield from k.list_del_init(p1)  # self-linked: the list does not change

    run_task(w, churn())
    notes = [e.text for e in w.trace.events if e.kind == "note"]
    assert notes == [
        "mm0->context.pgtable_list: P0",
        "mm0->context.pgtable_list: P0 P1",
        "mm0->context.pgtable_list: P1",
        "mm0->context.pgtable_list: (empty)",
    ]
    assert w.steps == counted(w)
    diagram = w.trace.render(2)
    at = diagram.index("list_add_tail(P1->lru,\n")
    assert diagram[at:].splitlines()[1:3] == [
        "              mm0->context.pgtable_list)",
        "  mm0->context.pgtable_list: P0 P1",  # under its step, one level deeper
    ]


def test_a_spinning_context_names_the_holder_and_says_when_it_got_the_lock() -> None:
    w = make_world()
    lock = k.DEFINE_SPINLOCK("demo_lock")

    def hold() -> Script:
        yield from k.spin_lock_bh(lock)
        yield from k.spin_unlock_bh(lock)

    holder = w.start_task(w.cpus[0], "holder", hold())
    assert w.advance(holder)
    waiter = w.start_task(w.cpus[1], "waiter", hold())
    assert not w.advance(waiter)
    w.run(holder)
    w.run(waiter)
    texts = [e.text.strip() for e in w.trace.events if e.cpu == 1]
    assert texts[:3] == [
        "spin_lock_bh(demo_lock)",
        "spins: held by CPU0/task",
        "spin_lock_bh(demo_lock) taken",
    ]


def test_the_ipi_of_tlb_remove_table_sync_one_is_marked_on_every_other_cpu() -> None:
    w = make_world(ncpus=3)
    page = new_page(w)
    run_task(w, k.atomic_xor_bits(page, 0x03 << 24))  # a whole 4K table, allocated
    tlb = tlb_gather_mmu(MMStruct.create("mm0", False), batch_alloc_fails=True)
    run_task(w, k.tlb_remove_table(tlb, k.tagged(page, 0x03)), cpu=1)
    assert w.steps == counted(w)
    lines = w.trace.render(3).splitlines()
    header = lines[0]
    marks = [line for line in lines if "<IPI>" in line]
    assert [len(m) - len(m.lstrip()) for m in marks] == [header.index("CPU0"), header.index("CPU2")]
    assert all(m.strip() == "<IPI> tlb_remove_table_smp_sync()" for m in marks)
    at = next(i for i, line in enumerate(lines) if "tlb_remove_table_sync_one(): IPI" in line)
    assert lines[at + 1 : at + 3] == marks  # right after the IPI is sent


def test_a_softirq_is_marked_where_it_starts_and_where_its_task_resumes() -> None:
    events = [
        Event(0, 0, False, 1, "spin_lock(&mm1->context.lock)", "step"),
        Event(1, 0, True, 0, "pte_free_now1(P0->rcu_head)", "enter"),
        Event(2, 0, True, 1, "atomic_xor_bits(P0, 0x08) -> 0x21", "step"),
        Event(3, 0, False, 1, "spin_unlock(&mm1->context.lock)", "step"),
    ]
    assert render_diagram(events, 2).splitlines()[2:] == [
        "  spin_lock(&mm1->context.lock)",
        "<softirq>",
        "pte_free_now1(P0->rcu_head)",
        "  atomic_xor_bits(P0, 0x08) -> 0x21",
        "</softirq>",
        "  spin_unlock(&mm1->context.lock)",
    ]


def test_a_violation_shows_the_access_that_broke_unless_its_step_is_shown() -> None:
    lock = "spin_lock_bh(&mm1->context.lock)"
    shown = [
        Event(0, 1, False, 1, lock, "step"),
        Event(1, 1, False, 1, "KASAN", "violation", "use-after-free", lock),
    ]
    assert render_diagram(shown, 2).splitlines()[2:4] == [
        " " * 40 + "  " + lock,
        " " * 40 + "  <-- use-after-free",
    ]
    unshown = [Event(0, 0, False, 2, "DEBUG_LIST", "violation", "list-corruption", "list_del(P0)")]
    assert render_diagram(unshown, 2).splitlines()[2:4] == [
        "    list_del(P0)",
        "    <-- list-corruption",
    ]


def test_a_long_call_breaks_after_its_parenthesis_and_lines_up_its_arguments() -> None:
    assert wrap_step("list_add(P0->lru, mm1->context.pgtable_list)", 2, 40) == [
        "  list_add(P0->lru,",
        "           mm1->context.pgtable_list)",
    ]
    # Too long to line up: the continuation sits deeper than an annotation.
    assert wrap_step("list_first_entry(mm1->context.pgtable_list) -> NULL", 2, 40) == [
        "  list_first_entry(",
        "      mm1->context.pgtable_list) -> NULL",
    ]


WORD = st.text("abcdefghijklmnopqrstuvwxyz_0123456789->.(),&|[]", min_size=1, max_size=45)


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(WORD, min_size=1, max_size=12),
    depth=st.integers(0, 14),
    ncpus=st.integers(1, 4),
    data=st.data(),
)
def test_a_step_fits_the_width_and_keeps_every_character(
    words: list[str], depth: int, ncpus: int, data: st.DataObject
) -> None:
    text = " ".join(words)
    cpu = data.draw(st.integers(0, ncpus - 1))
    drawn = render_diagram([Event(0, cpu, False, depth, text, "step")], ncpus).splitlines()[2:]
    assert all(len(line) <= 80 for line in drawn), drawn
    assert "".join("".join(drawn).split()) == "".join(text.split())


def test_every_callback_that_runs_follows_the_grace_period_it_waited_for() -> None:
    """The drain's grace periods are in the diagram too, not only the machine's."""
    from designs.upstream_6_4 import Upstream64
    from stateful.machine import MachineConfig, machine_for
    from stateful.replay import Step, replay

    machine_cls = machine_for(Upstream64, None, MachineConfig(auto_grace_period=False))
    steps = [
        Step.of("page_table_alloc", {"cpu": 0, "mm": 0, "pause": 0, "irq": 0}),
        Step.of(
            "pte_free_tlb",
            {"cpu": 0, "table": 0, "batch_alloc_fails": False, "pause": 0, "irq": 0},
        ),
    ]
    outcome = replay(machine_cls, steps)
    assert outcome.violation is None and not outcome.skipped
    lines = outcome.machine.world.trace.render(2).splitlines()
    ends = [i for i, line in enumerate(lines) if "grace period 1 ends" in line]
    runs = [i for i, line in enumerate(lines) if "tlb_remove_table_rcu(" in line]
    assert ends and runs and ends[0] < runs[0], "\n".join(lines)
