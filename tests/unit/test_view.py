"""build_view: one interval + the filters -> the View every consumer reads."""

from __future__ import annotations

from perftop.model.samples import CpuStat, Frame, Interval, ProcessInfo, StackSample
from perftop.model.stats import ViewFilter
from perftop.profile.view import build_view
from tests.unit.factories import kernel, stack, user


def interval_of(*stacks: StackSample, **infos: ProcessInfo) -> Interval:
    return Interval(
        timestamp=10.0,
        interval_s=1.0,
        event="cpu-clock",
        frequency_hz=99,
        lost={},
        cpus=(CpuStat(0, sum(s.samples for s in stacks), 5),),
        stacks=tuple(stacks),
        processes={info.pid: info for info in infos.values()},
    )


WEB = stack(user("main", "web"), user("serve", "web"), pid=10, comm="web", samples=30)
DB = stack(
    user("main", "db"), user("scan", "db"), kernel("vfs_read"), pid=20, comm="db", samples=50
)
BATCH = stack(user("main", "batch"), user("crunch", "batch"), pid=30, comm="batch", samples=20)
WORKLOAD = interval_of(WEB, DB, BATCH, web=ProcessInfo(10, "alice"), db=ProcessInfo(20, "bob"))


def test_an_empty_interval_gives_an_empty_view() -> None:
    view = build_view(interval_of())
    assert view.stacks == () and view.processes == () and view.functions == ()
    assert view.samples == 0 and view.samples_per_second == 0.0


def test_the_interval_counts_its_samples_itself() -> None:
    assert WORKLOAD.samples == 100 and WORKLOAD.idle_samples == 5


def test_no_filter_keeps_everything_and_reads_the_interval_through() -> None:
    view = build_view(WORKLOAD)
    assert view.stacks is WORKLOAD.stacks
    assert [p.pid for p in view.processes] == [20, 10, 30]
    assert view.processes[0].info.user == "bob"
    assert view.processes[2].info.exited  # no details: gone before psutil saw it
    assert view.samples == 100
    assert (view.event, view.frequency_hz, view.idle_samples) == ("cpu-clock", 99, 5)


def test_pid_and_text_filters_recompute_shares_of_what_is_left() -> None:
    view = build_view(WORKLOAD, ViewFilter(pids=(10, 30)))
    assert [(p.pid, round(p.percent)) for p in view.processes] == [(10, 60), (30, 40)]
    assert view.samples == 50
    assert {f.symbol for f in view.functions} == {"main", "serve", "crunch"}
    text = build_view(WORKLOAD, ViewFilter(text="VFS"))
    assert [p.pid for p in text.processes] == [20]


def test_zoom_narrows_stacks_functions_and_samples_but_not_the_process_list() -> None:
    view = build_view(WORKLOAD, ViewFilter(zoom_pid=30))
    assert [s.pid for s in view.stacks] == [30]
    assert view.samples == 20
    assert {f.symbol for f in view.functions} == {"main", "crunch"}
    assert view.functions[0].self_percent == 100.0
    # The processes table still lists every process, the zoom picks one of them.
    assert [p.pid for p in view.processes] == [20, 10, 30]
    assert {s.pid for s in view.unzoomed_stacks} == {10, 20, 30}


def test_functions_always_agree_with_the_stacks_they_came_from() -> None:
    """The flame graph's old zoom filtered stacks and left the functions of the whole view."""
    for view_filter in (
        ViewFilter(),
        ViewFilter(pids=(20,)),
        ViewFilter(text="crunch", zoom_pid=30),
    ):
        view = build_view(WORKLOAD, view_filter)
        leaves = {s.frames[-1].symbol for s in view.stacks}
        assert {f.symbol for f in view.functions if f.self_samples} == leaves
        assert sum(f.self_samples for f in view.functions) == view.samples


def test_a_function_says_whether_it_has_a_symbol() -> None:
    stripped = Frame("libfoo.so+0x1a2b", "libfoo.so", False, "stripped binary")
    view = build_view(interval_of(stack(user("main"), stripped, pid=1)))
    resolved = {f.symbol: f.resolved for f in view.functions}
    assert resolved == {"main": True, "libfoo.so+0x1a2b": False}


def test_a_preview_ranks_psutil_processes_by_cpu() -> None:
    preview = Interval(
        timestamp=0.0,
        interval_s=1.0,
        event="cpu-clock",
        frequency_hz=99,
        lost={},
        cpus=(),
        stacks=(),
        processes={
            1: ProcessInfo(1, cpu_percent=10.0, name="sshd"),
            2: ProcessInfo(2, cpu_percent=30.0, name="gzip"),
        },
        preview=True,
    )
    view = build_view(preview)
    assert [(p.pid, p.comm, p.percent) for p in view.processes] == [
        (2, "gzip", 75.0),
        (1, "sshd", 25.0),
    ]
    assert build_view(preview, ViewFilter(zoom_pid=2)).functions == ()
