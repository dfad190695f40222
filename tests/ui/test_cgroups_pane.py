"""The screen's cgroups: `g` shows cgroups as rows in the processes pane, Enter zooms into one,
`c` sets the kernel's cgroup filter (checked as --cgroup is), the header shows both, and names
from the machine are shown literally."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from perftop.model.samples import CgroupInfo, Interval, ProcessInfo, StackSample
from perftop.ui.app import PerftopApp
from perftop.ui.widgets.filter_input import FilterInput
from tests.ui.conftest import FakeSource, screen_lines, table_column, wait_for, widget_lines
from tests.ui.test_keys import drive
from tests.unit.factories import user

HOSTILE = "/evil\x1b[31m[bold]x[/bold]"
CGROUPS = {
    1: CgroupInfo(1, "/web.service", "web.service", usage_percent=120.0, throttled_usec=3000),
    2: CgroupInfo(2, "/system.slice/docker-" + "b" * 64 + ".scope", "shop", container="shop"),
    3: CgroupInfo(3, HOSTILE, HOSTILE, quota=0.5),
}


def _interval(**fields: object) -> Interval:
    def stack(pid: int, cgroup_id: int, samples: int) -> StackSample:
        return StackSample(
            pid, pid, f"job{pid}", (user("main"), user(f"spin{pid}")), samples, samples, cgroup_id
        )

    stacks = (stack(1001, 1, 50), stack(2002, 1, 10), stack(3003, 2, 30), stack(4004, 3, 10))
    defaults: dict[str, object] = {
        "timestamp": 1000.0,
        "interval_s": 1.0,
        "event": "cpu-clock",
        "frequency_hz": 99,
        "lost": {},
        "cpus": (),
        "stacks": stacks,
        "processes": {s.pid: ProcessInfo(s.pid, user="root") for s in stacks},
        "cgroups": CGROUPS,
    }
    defaults.update(fields)
    return Interval(**defaults)  # type: ignore[arg-type]


@pytest.fixture
def source() -> FakeSource:
    return FakeSource([_interval()])


def cgroup_pane(app: PerftopApp) -> list[str]:
    return widget_lines(app, app.dashboard.cgroup_table)


def test_g_shows_cgroups_as_rows_hottest_first_with_their_figures(source: FakeSource) -> None:
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("g")
        await wait_for(pilot, lambda: app.dashboard.cgroup_table.row_count == 3)
        lines = cgroup_pane(app)
        assert "Cgroups (3)" in lines[0]
        # A plain cgroup is named by its path, shown once (in CGROUP).
        assert table_column(app, "#cgroups", "NAME") == ["web.service", "shop", "-"]
        web = next(line for line in lines if "web.service" in line)
        assert web.split()[:5] == ["60", "60.0", "120.0", "3ms", "max"]
        assert not app.dashboard.process_table.display
        await pilot.press("g")  # and back
        await wait_for(pilot, lambda: app.dashboard.process_table.display)
        assert table_column(app, "#processes", "PID")[:2] == ["1001", "3003"]

    drive(app, script, size=(160, 48))


def test_a_hostile_cgroup_name_is_shown_literally(source: FakeSource) -> None:
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("g")
        await wait_for(pilot, lambda: app.dashboard.cgroup_table.row_count == 3)
        text = "\n".join(screen_lines(app))
        assert "\x1b" not in text
        # Markup shown as the characters it is made of, never as bold text: the path's cell
        # and the stack pane's title, which follows the selection.
        await pilot.press("end")
        await wait_for(pilot, lambda: "Call stacks: cgroup /evil" in "\n".join(screen_lines(app)))
        text = "\n".join(screen_lines(app))
        assert "\x1b" not in text
        assert "Call stacks: cgroup /evil\\x1b[31m[bold]x[/bold]" in text
        pane = "\n".join(cgroup_pane(app))
        assert "/evil\\x1b[31m[bold]x[/bold]" in pane, pane

    drive(app, script, size=(240, 48))  # wide: the whole path in view


def test_enter_on_a_cgroup_zooms_into_its_processes_functions_and_stacks(
    source: FakeSource,
) -> None:
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("g")
        await wait_for(pilot, lambda: app.dashboard.cgroup_table.row_count == 3)
        await pilot.press("enter")  # the hottest: web.service
        await wait_for(pilot, lambda: app.dashboard.process_table.display)
        assert table_column(app, "#processes", "PID") == ["1001", "2002"]
        symbols = table_column(app, "#functions", "SYMBOL")
        assert set(symbols) == {"spin1001", "spin2002", "main"}
        header = screen_lines(app)[1]
        assert "zoom cgroup web.service" in header
        assert "Processes of cgroup /web.service (2)" in "\n".join(screen_lines(app))
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(table_column(app, "#processes", "PID")) == 4)

    drive(app, script, size=(160, 48))


def test_the_stack_pane_follows_the_selected_cgroup(source: FakeSource) -> None:
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("g")
        await wait_for(pilot, lambda: app.dashboard.cgroup_table.row_count == 3)
        await pilot.press("down")  # shop
        await wait_for(pilot, lambda: "Call stacks: cgroup shop" in "\n".join(screen_lines(app)))
        stacks = "\n".join(widget_lines(app, app.dashboard.stack_tree))
        assert "spin3003" in stacks and "spin1001" not in stacks

    drive(app, script, size=(160, 48))


def test_c_sets_the_kernel_cgroup_filter_and_the_header_shows_it(source: FakeSource) -> None:
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("c", "/", "enter")  # the root cgroup exists on every cgroup2 mount
        await wait_for(pilot, lambda: not isinstance(app.screen, FilterInput))
        assert source.calls == [("cgroup_filter", ("/",))]
        assert "cgroup /" in screen_lines(app)[1]
        await pilot.press("escape")  # clears it, in the kernel too
        await wait_for(pilot, lambda: len(source.calls) == 2)
        assert source.calls[-1] == ("cgroup_filter", ())

    drive(app, script, size=(160, 48))


def test_c_refuses_what_the_command_line_refuses(
    source: FakeSource, capsys: pytest.CaptureFixture[str]
) -> None:
    from perftop.cli.main import main

    assert main(["--batch", "--cgroup", "perftop-no-such-cgroup"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    message = line.removeprefix("perftop: --cgroup perftop-no-such-cgroup: ").split(" under")[0]
    assert message == "no such cgroup"
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        await pilot.press("c", *"perftop-no-such-cgroup", "enter")
        await wait_for(pilot, lambda: message in "\n".join(screen_lines(app)))
        assert isinstance(app.screen, FilterInput), "the prompt stays open to be fixed"
        assert source.calls == []

    drive(app, script, size=(160, 48))


def test_cgroup_v1_only_the_pane_says_so_once_and_the_rest_works() -> None:
    reason = "cgroup v2 is not mounted: per-cgroup rows need it"
    source = FakeSource([_interval(cgroups={}, cgroups_unavailable=reason)])
    app = PerftopApp(source)

    async def script(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: source.delivered == 1)
        # Delivered is not yet drawn: wait for the rows rather than race the refresh.
        await wait_for(pilot, lambda: len(table_column(app, "#processes", "PID")) == 4)
        await pilot.press("g")
        await wait_for(pilot, lambda: app.dashboard.cgroup_table.display)
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert text.count(reason) == 1
        assert app.dashboard.cgroup_table.row_count == 0

    drive(app, script, size=(160, 48))
