"""The view model: interval + choices -> rows, header pieces, call trees. No terminal needed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perftop.model.modes import StackMode
from perftop.model.pids import parse_pids as parse_pid_list
from perftop.model.reasons import Unresolved
from perftop.model.samples import CpuStat, Frame, Interval, ProcessInfo, SamplerCost, StackSample
from perftop.model.stats import View, ViewFilter
from perftop.profile.accumulate import DecayingAccumulation
from perftop.viewmodel import (
    FUNCTION_COLUMNS,
    JIT_REMEDY,
    PROCESS_COLUMNS,
    Piece,
    PieceKind,
    TableRow,
    ViewOptions,
    build_view,
    cost_pieces,
    cpu_sparkline,
    cycle_sort,
    explain_unresolved,
    filter_pieces,
    function_key_of,
    human_bytes,
    next_frequency,
    stack_tree,
    status_pieces,
    tables,
    with_quiet_processes,
)
from tests.unit.factories import callees, kernel, stack, user

HOSTILE = "[bold red]x[/]\x1b]0;owned\x07"


def snapshot_of(
    *stacks: StackSample, infos: dict[int, ProcessInfo] | None = None, **fields: object
) -> Interval:
    bare = Interval(
        timestamp=0.0,
        interval_s=1.0,
        event="cpu-clock",
        frequency_hz=99,
        lost={},
        cpus=(),
        stacks=tuple(stacks),
        processes=infos or {},
    )
    return replace(bare, **fields)  # type: ignore[arg-type]


def process_rows(
    interval: Interval | View,
    sort: str = tables.DEFAULT_PROCESS_SORT,
    reverse: bool = False,
    text_filter: str = "",
    pids: tuple[int, ...] = (),
    limit: int | None = None,
) -> list[TableRow]:
    """The rows of the view the filters make of `interval`."""
    if isinstance(interval, Interval):
        interval = build_view(interval, ViewFilter(pids=pids, text=text_filter))
    return tables.process_rows(interval, sort, reverse, limit=limit)


def function_rows(
    interval: Interval,
    sort: str = tables.DEFAULT_FUNCTION_SORT,
    reverse: bool = False,
    zoom_pid: int | None = None,
    limit: int | None = None,
) -> list[TableRow]:
    view = build_view(interval, ViewFilter(zoom_pid=zoom_pid))
    return tables.function_rows(view, sort, reverse, limit=limit)


INFOS = {
    10: ProcessInfo(10, "alice", "web --port 80", 4, 50.0, 300 * 2**20),
    20: ProcessInfo(20, "bob", "db", 2, 80.0, 100 * 2**20),
    30: ProcessInfo(30, "carol", "batch", 1, 5.0, 2**30),
}
WORKLOAD = snapshot_of(
    stack(user("main", "web"), user("serve", "web"), pid=10, comm="web", samples=30),
    stack(
        user("main", "db"), user("scan", "db"), kernel("vfs_read"), pid=20, comm="db", samples=50
    ),
    stack(user("main", "batch"), user("crunch", "batch"), pid=30, comm="batch", samples=20),
    infos=INFOS,
)


def pid_order(rows: list[TableRow]) -> list[str]:
    return [str(row.key) for row in rows]


# Sorting ------------------------------------------------------------------------------------


def test_empty_snapshot_has_no_rows() -> None:
    empty = snapshot_of()
    assert process_rows(empty) == []
    assert function_rows(empty) == []


def test_processes_sort_hottest_first_by_default() -> None:
    assert pid_order(process_rows(WORKLOAD)) == ["20", "10", "30"]


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("pid", ["10", "20", "30"]),  # identifiers and names sort ascending first
        ("user", ["10", "20", "30"]),
        ("cpu", ["20", "10", "30"]),  # measures sort largest first
        ("rss", ["30", "10", "20"]),
        ("threads", ["10", "20", "30"]),
        ("comm", ["30", "20", "10"]),
    ],
)
def test_processes_sort_by_each_column(column: str, expected: list[str]) -> None:
    assert pid_order(process_rows(WORKLOAD, sort=column)) == expected
    assert pid_order(process_rows(WORKLOAD, sort=column, reverse=True)) == expected[::-1]


def test_ties_keep_the_snapshot_order_so_rows_do_not_swap_each_refresh() -> None:
    tied = snapshot_of(
        stack(user("a"), pid=7, comm="x", samples=5),
        stack(user("b"), pid=3, comm="x", samples=5),
        infos={7: ProcessInfo(7), 3: ProcessInfo(3)},
    )
    assert pid_order(process_rows(tied, sort="comm")) == ["3", "7"]  # snapshot: samples, pid
    assert pid_order(process_rows(tied, sort="threads")) == ["3", "7"]


def test_cycle_sort_wraps_both_ways() -> None:
    assert cycle_sort(PROCESS_COLUMNS, "samples") == "share"
    assert cycle_sort(PROCESS_COLUMNS, "command") == "pid"
    assert cycle_sort(PROCESS_COLUMNS, "pid", -1) == "command"
    assert cycle_sort(FUNCTION_COLUMNS, "unknown") == "total"


def test_functions_sort_by_self_then_total() -> None:
    rows = function_rows(WORKLOAD)
    assert [row.cells[-1] for row in rows[:3]] == ["vfs_read", "serve", "crunch"]
    by_total = function_rows(WORKLOAD, sort="total")
    assert by_total[0].cells[-1] in ("main", "scan", "vfs_read")
    assert by_total[0].cells[1] == "50.0"


# Formatting ---------------------------------------------------------------------------------


def test_process_cells() -> None:
    row = process_rows(WORKLOAD)[0]
    assert row.key == 20
    assert row.cells == ("20", "bob", "50", "50.0", "80.0", "2", "100M", "db", "db")


def test_kernel_threads_are_bracketed_and_exited_processes_marked_and_dimmed() -> None:
    snapshot = snapshot_of(
        stack(kernel("worker_thread"), pid=5, comm="kworker/0:1"),
        stack(user("main"), pid=6, comm="cc1"),
        infos={5: ProcessInfo(5, "root", kernel_thread=True), 6: ProcessInfo(6, exited=True)},
    )
    rows = {str(row.key): row for row in process_rows(snapshot)}
    assert rows["5"].cells[7] == "[kworker/0:1]"
    assert rows["6"].cells[7] == "cc1 (exited)"
    assert rows["6"].cells[1] == "?" and rows["6"].cells[5] == "-" and rows["6"].cells[6] == "-"
    assert rows["6"].dim and not rows["5"].dim


def test_hostile_strings_come_out_printable_and_intact() -> None:
    snapshot = snapshot_of(
        stack(user("main"), user("evil[/]\x1b[31m", "lib\u202eevil.so"), pid=9, comm=HOSTILE),
        infos={9: ProcessInfo(9, "mal\x1bory", f"/tmp/{HOSTILE} --evil")},
    )
    process = process_rows(snapshot)[0]
    assert process.cells[7] == "[bold red]x[/]\\x1b]0;owned\\x07"
    assert process.cells[8] == "/tmp/[bold red]x[/]\\x1b]0;owned\\x07 --evil"
    assert process.cells[1] == "mal\\x1b…"  # user names are cut at 8, like top
    function = function_rows(snapshot)[0]
    assert function.cells[-1] == "evil[/]\\x1b[31m"
    assert function.cells[3] == "lib\\u202eevil.so"


def test_function_row_key_round_trips_whatever_the_symbol_holds() -> None:
    snapshot = snapshot_of(stack(user('a"b\\c\x1f', "m,o\0d"), pid=1))
    function = build_view(snapshot).functions[0]
    assert function_key_of(function) == ('a"b\\c\x1f', "m,o\0d", False)
    assert function_rows(snapshot)[0].key == ('a"b\\c\x1f', "m,o\0d", False)


def test_kernel_and_user_marks_and_unresolved_functions_dimmed() -> None:
    stripped = Frame("libfoo.so+0x1a2b", "libfoo.so", False, Unresolved.STRIPPED)
    snapshot = snapshot_of(stack(user("main"), stripped, kernel("do_syscall_64"), pid=1))
    rows = {row.cells[-1]: row for row in function_rows(snapshot)}
    assert rows["do_syscall_64"].cells[4] == "[k]"
    assert rows["main"].cells[4] == "[.]"
    assert rows["libfoo.so+0x1a2b"].dim and not rows["main"].dim


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "-"), (512, "512B"), (4096, "4K"), (5 * 2**20 + 2**19, "5.5M"), (300 * 2**20, "300M")],
)
def test_human_bytes(count: int, shown: str) -> None:
    assert human_bytes(count) == shown


# Filtering ----------------------------------------------------------------------------------


def test_text_filter_matches_command_or_any_symbol_case_blind() -> None:
    assert pid_order(process_rows(WORKLOAD, text_filter="DB")) == ["20"]
    assert pid_order(process_rows(WORKLOAD, text_filter="crunch")) == ["30"]
    assert pid_order(process_rows(WORKLOAD, text_filter="nothing")) == []


def test_filtered_shares_are_of_what_is_left() -> None:
    view = build_view(WORKLOAD, ViewFilter(pids=(10, 30)))
    assert [round(p.percent) for p in view.processes] == [60, 40]
    assert view.samples == 50
    assert build_view(WORKLOAD).stacks is WORKLOAD.stacks  # nothing to filter: nothing copied


def test_zoom_keeps_one_process_in_the_functions() -> None:
    rows = function_rows(WORKLOAD, zoom_pid=30)
    assert {row.cells[-1] for row in rows} == {"main", "crunch"}
    assert rows[0].cells[0] == "100.0"


def test_pid_filter_of_a_process_that_is_gone_shows_nothing_and_does_not_fail() -> None:
    assert process_rows(WORKLOAD, pids=(999,)) == []


@pytest.mark.parametrize(
    ("text", "pids"), [("", ()), ("12", (12,)), ("12, 34 56", (12, 34, 56)), ("7,7", (7,))]
)
def test_parse_pid_list(text: str, pids: tuple[int, ...]) -> None:
    assert parse_pid_list(text) == pids


@pytest.mark.parametrize(
    ("text", "bad"), [("abc", "abc"), ("12,-3", "-3"), ("0", "0"), ("12, 34 56,,", "")]
)
def test_parse_pid_list_names_the_bad_entry(text: str, bad: str) -> None:
    with pytest.raises(ValueError, match=f"'{bad}' is not a PID"):
        parse_pid_list(text)


# Controls -----------------------------------------------------------------------------------


def test_frequency_steps_stop_at_both_ends() -> None:
    assert next_frequency(99, 1) == 199
    assert next_frequency(99, -1) == 49
    assert next_frequency(150, 1) == 199  # from a -F value between steps
    assert next_frequency(999, 1) is None
    assert next_frequency(49, -1) is None


def test_stack_modes_cycle() -> None:
    assert [StackMode(m).next() for m in ("both", "kernel", "user")] == ["kernel", "user", "both"]


def test_accumulation_decays_and_resets() -> None:
    accumulation = DecayingAccumulation(keep=0.5)
    first = snapshot_of(stack(user("a"), pid=1, samples=100), infos={1: ProcessInfo(1, "u")})
    second = snapshot_of(stack(user("b"), pid=2, samples=10), infos={2: ProcessInfo(2, "v")})
    accumulation.add(first)
    both = build_view(accumulation.add(second))
    assert {p.pid: p.samples for p in both.processes} == {1: 50, 2: 10}
    assert {p.pid: p.info.user for p in both.processes} == {1: "u", 2: "v"}
    assert both.samples == 60
    for _ in range(8):
        faded = build_view(accumulation.add(second))
    assert [p.pid for p in faded.processes] == [2]  # decayed to nothing, then dropped
    accumulation.reset()
    assert accumulation.add(second).samples == 10


def test_options_cleared_keeps_sort_and_modes() -> None:
    options = ViewOptions(process_sort="cpu", text_filter="x", pids=(1,), zoom_pid=1, paused=True)
    cleared = options.cleared()
    assert not cleared.filtered
    assert cleared.process_sort == "cpu" and cleared.paused


# Header -------------------------------------------------------------------------------------


def header_text(pieces: list[Piece]) -> str:
    return "  ".join(piece.text for piece in pieces)


def test_status_line() -> None:
    cpus = (CpuStat(0, 100, 100),)
    snapshot = replace(WORKLOAD, cpus=cpus, interval_s=2.0, lost={"stack_errors": 3})
    text = header_text(status_pieces(snapshot))
    assert text.startswith("cpu-clock @ 99 Hz  2.00s  50 samples/s  idle 50%  lost 3")
    lost = next(piece for piece in status_pieces(snapshot) if piece.text.startswith("lost"))
    assert lost.kind is PieceKind.WARN
    assert "waiting" in header_text(status_pieces(None))


def test_sparkline_one_block_per_cpu_then_grouped() -> None:
    cpus = [CpuStat(0, 0, 10), CpuStat(1, 10, 0), CpuStat(2, 5, 5)]
    assert cpu_sparkline(cpus) == "▁█▅"
    many = [CpuStat(i, i % 2 * 10, (i + 1) % 2 * 10) for i in range(64)]
    assert len(cpu_sparkline(many, width=16)) == 16
    assert cpu_sparkline([]) == ""


def test_filter_line_names_every_active_filter() -> None:
    options = ViewOptions(pids=(1, 2), text_filter="sql", zoom_pid=2, paused=True, accumulated=True)
    snapshot = replace(WORKLOAD, stack_mode="kernel")
    text = header_text(filter_pieces(options, snapshot, "db", live=False, ended=True))
    for expected in (
        "REPLAY ENDED",
        "PAUSED",
        "pid 1,2",
        'text "sql"',
        "zoom 2 db",
        "kernel stacks only",
        "accumulated",
    ):
        assert expected in text
    assert "? help" in header_text(filter_pieces(ViewOptions(), WORKLOAD))


def test_cost_line() -> None:
    cost = SamplerCost(1.5, 2_500_000.0, 400.0, 900, 1000, 10, 100, 3.0)
    snapshot = replace(
        WORKLOAD, cost=cost, lost={"counts_full": 2}, headers="/usr/src/linux-headers-6.8.0-45"
    )
    text = header_text(cost_pieces(snapshot))
    assert text == (
        "perftop  1.5% cpu  bpf 2.5 ms/s (400 ns/sample)  lost 2 (counts_full 2)  "
        "maps 90% counts, 10% stacks  headers 6.8.0-45"
    )
    compact = header_text(cost_pieces(snapshot, compact=True))
    assert compact == "perftop  1.5% cpu  bpf 2.5 ms/s  lost 2  maps 90%/10%  headers 6.8.0-45"
    unknown = replace(snapshot, cost=replace(cost, bpf_run_ns_per_s=None))
    assert "kernel.bpf_stats_enabled=0" in header_text(cost_pieces(unknown))


# Call stacks and missing symbols ------------------------------------------------------------


def test_stack_tree_is_hottest_first_with_shares() -> None:
    tree = stack_tree(WORKLOAD.stacks, "all")
    assert [child.symbol for child in tree.children] == ["main", "main", "main"]
    assert [child.module for child in tree.children] == ["db", "web", "batch"]
    assert [child.share for child in tree.children] == [50.0, 30.0, 20.0]
    leaf = tree.children[0].children[0].children[0]
    assert (leaf.mark, leaf.symbol, leaf.self_share) == ("[k]", "vfs_read", 50.0)


def test_stack_tree_of_a_function_keeps_callers_and_callees() -> None:
    tree = stack_tree(WORKLOAD.stacks, "scan", function=("scan", "db", False))
    assert tree.children[0].symbol == "main"
    assert tree.children[0].children[0].children[0].symbol == "vfs_read"


def test_cold_branches_are_folded() -> None:
    stacks = [stack(user("main"), user(f"f{i}"), samples=1) for i in range(300)]
    stacks.append(stack(user("main"), user("hot"), samples=700))
    tree = stack_tree(stacks, "t")
    children = tree.children[0].children
    assert children[0].symbol == "hot"
    assert children[-1].symbol == "… 300 more under 0.5%"
    assert round(children[-1].share) == 30


def test_recursion_does_not_blow_up_the_tree() -> None:
    deep = stack(*[user("recurse")] * 120, samples=5)
    tree = stack_tree([deep], "t")
    depth = 0
    node = tree
    while callees(node):
        (node,) = callees(node)
        depth += 1
    assert depth == 120


def test_stack_tree_converts_only_the_branches_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pane unfolds a few branches of a tree of thousands of lines: converting all of it
    (every symbol made printable) every interval was most of the pane's cost."""
    from perftop.viewmodel import stacks as stacks_module

    made_printable: list[str] = []
    real = stacks_module.printable

    def counting(text: str, limit: int | None = None) -> str:
        made_printable.append(text)
        return real(text, limit)

    monkeypatch.setattr(stacks_module, "printable", counting)
    deep = [
        stack(user("main"), *(user(f"f{i}_{d}") for d in range(10)), samples=1) for i in range(50)
    ]
    tree = stack_tree(deep, "t")
    assert made_printable == []
    (main,) = tree.children
    assert main.has_children and len(made_printable) == 2  # its symbol and module
    assert len(main.children) == 50 and len(made_printable) == 2 + 2 * 50
    # Deeper on demand, same result (f0_0 .. f0_8 each call one function: one run line).
    assert callees(callees(main)[0])[0].symbol == "f0_1"


def test_unresolved_frames_say_why_in_the_tree() -> None:
    stripped = Frame("libfoo.so+0x1a2b", "libfoo.so", False, Unresolved.STRIPPED)
    tree = stack_tree([stack(user("main"), stripped)], "t")
    frame = tree.children[0].children[0]
    assert frame.explanation is not None
    assert frame.explanation.reason == "stripped binary"


@pytest.mark.parametrize(
    ("reason", "remedy_part"),
    [
        (Unresolved.STRIPPED, "install debug symbols for libx.so"),
        (Unresolved.NO_COVERING_SYMBOL, "install debug symbols for libx.so"),
        (Unresolved.JIT, "python -X perf"),
        (Unresolved.JIT, "--perf-basic-prof"),
        (Unresolved.PERF_MAP_FOREIGN_OWNER, "python -X perf"),
        (Unresolved.GONE, "exited before its symbols were read"),
        (Unresolved.NOT_MAPPED, "-fno-omit-frame-pointer"),
        (Unresolved.UNREADABLE, "restart the process"),
        (Unresolved.UNREADABLE_ELF, "restart the process"),
        (Unresolved.MAPS_DENIED, "run perftop as root"),
        (Unresolved.KPTR, "kptr_restrict=0"),
        (Unresolved.NO_KERNEL_SYMBOL, "bpf_jit_kallsyms=1"),
    ],
)
def test_explanations_give_a_remedy(reason: Unresolved, remedy_part: str) -> None:
    explanation = explain_unresolved(Frame("libx.so+0x10", "libx.so", False, reason))
    assert explanation is not None
    assert remedy_part in (explanation.remedy or "")


def test_explanations_for_resolved_and_unknown_reasons() -> None:
    assert explain_unresolved(Frame("main", "app", False)) is None
    odd = explain_unresolved(Frame("x", "y", False, Unresolved.UNKNOWN))
    assert odd is not None and odd.remedy is None and odd.reason == Unresolved.UNKNOWN.text
    assert "python -X perf" in JIT_REMEDY


def test_quiet_filtered_processes_keep_a_row() -> None:
    view = build_view(WORKLOAD, ViewFilter(pids=(10, 99, 98)))
    shown = with_quiet_processes(view, (10, 99, 98), gone={99}, names={99: "cc1"})
    rows = {str(row.key): row for row in process_rows(shown)}
    assert list(rows) == ["10", "99", "98"]
    assert rows["99"].cells[7] == "cc1 (exited)" and rows["99"].dim
    assert rows["98"].cells[7] == "?" and rows["98"].cells[2] == "0"
    everything = build_view(WORKLOAD)
    assert with_quiet_processes(everything, ()) is everything


def test_rows_can_be_limited_after_sorting() -> None:
    assert pid_order(process_rows(WORKLOAD, limit=2)) == ["20", "10"]
    assert pid_order(process_rows(WORKLOAD, sort="pid", limit=1)) == ["10"]
    assert len(function_rows(WORKLOAD, limit=3)) == 3
