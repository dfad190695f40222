"""Cgroups in the model, the view, the accumulation, the formats and the command line, over
hand-built intervals (the live side is tests/system/test_cgroups_sampler.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from perftop.cli.main import UsageError, main, parse_config
from perftop.formats.output import format_json, format_text
from perftop.formats.recording import decode_interval, encode_interval
from perftop.model.samples import CgroupInfo, Interval, ProcessInfo, StackSample
from perftop.model.stats import ViewFilter
from perftop.profile.accumulate import DecayingAccumulation
from perftop.profile.aggregate import merge_stacks
from perftop.profile.view import build_view
from perftop.sampling.cgroups import CgroupCatalog
from perftop.system.cgroups import CgroupsUnavailable
from perftop.viewmodel import cgroup_rows
from tests.unit.factories import user

WEB, DB, NESTED, GONE = 11, 22, 33, 44
HOSTILE = "/evil\x1b[31m[bold]x[/bold]\nname"


def _info(cgroup_id: int, path: str, **figures: object) -> CgroupInfo:
    return CgroupInfo(cgroup_id, path, path.rsplit("/", 1)[-1] or path, **figures)  # type: ignore[arg-type]


CGROUPS = {
    WEB: _info(WEB, "/web.service", usage_percent=150.0, throttled_usec=2500, quota=1.5),
    DB: CgroupInfo(
        DB,
        "/system.slice/docker-" + "a" * 64 + ".scope",
        "db",
        container="db",
        usage_percent=40.0,
        throttled_usec=0,
    ),
    NESTED: _info(NESTED, "/web.service/worker", usage_percent=10.0),
}


def _stack(pid: int, cgroup_id: int, samples: int, symbol: str = "spin") -> StackSample:
    return StackSample(
        pid, pid, f"p{pid}", (user("main"), user(symbol)), samples, samples, cgroup_id
    )


def _interval(stacks: tuple[StackSample, ...], **fields: object) -> Interval:
    defaults: dict[str, object] = {
        "timestamp": 1000.0,
        "interval_s": 1.0,
        "event": "cpu-clock",
        "frequency_hz": 99,
        "lost": {},
        "cpus": (),
        "stacks": stacks,
        "processes": {pid: ProcessInfo(pid, user="root") for pid in {s.pid for s in stacks}},
        "cgroups": CGROUPS,
    }
    defaults.update(fields)
    return Interval(**defaults)  # type: ignore[arg-type]


STACKS = (
    _stack(1, WEB, 60),
    _stack(2, WEB, 15, "other"),
    _stack(3, DB, 20),
    _stack(4, NESTED, 5),
)


def test_cgroup_rows_are_per_path_hottest_first_with_their_own_figures() -> None:
    view = build_view(_interval(STACKS))
    assert [(row.cgroup, row.samples) for row in view.cgroups] == [
        ("/web.service", 75),
        (CGROUPS[DB].path, 20),
        ("/web.service/worker", 5),  # a nested cgroup is a row of its own
    ]
    web = view.cgroups[0]
    assert web.percent == pytest.approx(75.0)
    assert (web.info.usage_percent, web.info.throttled_usec, web.info.quota) == (150.0, 2500, 1.5)
    assert view.cgroups[1].name == "db"


def test_processes_carry_their_cgroup_and_container() -> None:
    view = build_view(_interval(STACKS))
    by_pid = {process.pid: process for process in view.processes}
    assert (by_pid[1].cgroup, by_pid[1].container) == ("/web.service", None)
    assert (by_pid[3].cgroup, by_pid[3].container) == (CGROUPS[DB].path, "db")


def test_a_process_is_in_the_cgroup_it_ran_in_most() -> None:
    moved = (_stack(1, WEB, 3), _stack(1, DB, 7, "later"))
    [process] = build_view(_interval(moved)).processes
    assert process.cgroup == CGROUPS[DB].path


def test_ids_without_a_path_and_old_recordings() -> None:
    unknown = (_stack(1, 999, 4), StackSample(2, 2, "old", (user("x"),), 6, 6))
    view = build_view(_interval(unknown, cgroups={}))
    assert [(row.cgroup, row.samples) for row in view.cgroups] == [("cgroup id 999", 4)]
    by_pid = {process.pid: process for process in view.processes}
    assert by_pid[1].cgroup == "cgroup id 999"
    assert by_pid[2].cgroup is None  # id 0: not sampled (a recording made before cgroups)


def test_a_path_made_again_is_one_row_and_measured_cgroups_without_samples_show() -> None:
    again = CgroupInfo(55, "/web.service", "web.service", usage_percent=1.0)
    old = replace(CGROUPS[WEB], removed=True)
    idle = _info(66, "/idle.service", usage_percent=0.5)
    gone = _info(GONE, "/gone.service", removed=True)
    cgroups = {WEB: old, 55: again, 66: idle, GONE: gone}
    view = build_view(_interval((_stack(1, WEB, 3), _stack(2, 55, 2)), cgroups=cgroups))
    rows = {row.cgroup: row for row in view.cgroups}
    assert rows["/web.service"].samples == 5
    assert rows["/web.service"].info is again  # the live one's figures
    assert rows["/idle.service"].samples == 0  # cpu.stat saw CPU the sampler did not
    assert "/gone.service" not in rows  # removed and no samples: aged out


def test_zoom_into_a_cgroup_narrows_processes_functions_and_stacks() -> None:
    view = build_view(_interval(STACKS), ViewFilter(zoom_cgroup="/web.service"))
    assert {process.pid for process in view.processes} == {1, 2}
    assert view.samples == 75
    assert {function.symbol for function in view.functions} == {"main", "spin", "other"}
    assert len(view.cgroups) == 3  # the cgroup rows still list the others


def test_stacks_merge_per_cgroup() -> None:
    same_chain = (_stack(1, WEB, 2), _stack(1, WEB, 3), _stack(1, DB, 4))
    merged = sorted(merge_stacks(same_chain), key=lambda stack: stack.cgroup_id)
    assert [(stack.cgroup_id, stack.samples) for stack in merged] == [(WEB, 5), (DB, 4)]


def test_accumulation_keeps_a_removed_cgroup_until_its_samples_fade() -> None:
    accumulation = DecayingAccumulation(keep=0.5)
    first = accumulation.add(_interval((_stack(9, GONE, 4),), cgroups={GONE: _info(GONE, "/x")}))
    assert first.cgroups[GONE].path == "/x"
    later = accumulation.add(_interval((), cgroups={}))
    assert [row.cgroup for row in build_view(later).cgroups] == ["/x"]
    assert later.cgroups[GONE].usage_percent is None  # not measured in this interval
    for _ in range(3):
        later = accumulation.add(_interval((), cgroups={}))
    assert GONE not in later.cgroups
    assert build_view(later).cgroups == ()


def test_json_has_cgroup_rows_and_each_process_cgroup() -> None:
    data = json.loads(format_json(build_view(_interval(STACKS, cgroup_filter=("/web.service",)))))
    assert data["cgroup_filter"] == ["/web.service"]
    assert data["cgroups_unavailable"] is None
    first = data["cgroups"][0]
    assert first == {
        "cgroup": "/web.service",
        "name": "web.service",
        "container": None,
        "samples": 75,
        "percent": 75.0,
        "usage_percent": 150.0,
        "throttled_usec": 2500,
        "quota": 1.5,
        "removed": False,
    }
    assert [row["cgroup"] for row in data["cgroups"]][1:] == [
        CGROUPS[DB].path,
        "/web.service/worker",
    ]
    processes = {process["pid"]: process for process in data["processes"]}
    assert processes[3]["cgroup"] == CGROUPS[DB].path
    assert processes[3]["container"] == "db"
    assert processes[1]["container"] is None


def test_text_has_a_cgroups_section() -> None:
    text = format_text(build_view(_interval(STACKS, cgroup_filter=("/web.service",))))
    assert "cgroup /web.service" in text.splitlines()[0]
    header = next(line for line in text.splitlines() if "THROTTLED" in line)
    rows = text.splitlines()[text.splitlines().index(header) + 1 :][:3]
    assert rows[0].split()[:5] == ["75", "75.00%", "150.0", "2ms", "1.50"]
    assert rows[0].endswith("/web.service")
    assert rows[1].split()[4] == "max"  # no cpu.max limit
    assert "worker" in rows[2]


def test_cgroup_v1_only_is_said_once_and_the_rest_works() -> None:
    reason = CgroupsUnavailable("cgroup v2 is not mounted: per-cgroup rows need it").reason
    interval = _interval(
        tuple(stack._replace(cgroup_id=0) for stack in STACKS),
        cgroups={},
        cgroups_unavailable=reason,
    )
    view = build_view(interval)
    text = format_text(view)
    assert text.count("cgroup v2 is not mounted") == 1
    assert "THROTTLED" not in text
    assert "SYMBOL" in text and "spin" in text  # everything else works
    data = json.loads(format_json(view))
    assert data["cgroups"] == [] and data["cgroups_unavailable"] == reason
    assert all(process["cgroup"] is None for process in data["processes"])
    assert len(data["processes"]) == 4


def test_catalog_without_cgroup2_says_why_and_names_nothing() -> None:
    catalog = CgroupCatalog(CgroupsUnavailable("cgroup v2 is not mounted: per-cgroup rows need it"))
    assert catalog.unavailable.startswith("cgroup v2 is not mounted")
    assert catalog.describe({1, 2, 3}) == {}
    assert catalog.directories(["/a"]) == []


def test_hostile_cgroup_names_are_printable_in_rows_and_text_and_exact_in_json() -> None:
    hostile = CgroupInfo(77, HOSTILE, HOSTILE, container=HOSTILE)
    view = build_view(_interval((_stack(1, 77, 3),), cgroups={77: hostile}))
    [row] = cgroup_rows(view)
    for cell in row.cells:
        assert "\x1b" not in cell and "\n" not in cell
    assert "[bold]x[/bold]" in row.cells[-1]  # literal text, for the UI to show as such
    text = format_text(view)
    assert "\x1b" not in text and "\\x1b" in text
    assert "[bold]x[/bold]" in text
    data = json.loads(format_json(view))
    assert data["cgroups"][0]["cgroup"] == HOSTILE
    assert data["processes"][0]["container"] == HOSTILE


def test_recording_keeps_cgroups_and_reads_the_old_format() -> None:
    interval = _interval(
        STACKS, cgroup_filter=("/web.service",), cgroups_unavailable="", cgroups=dict(CGROUPS)
    )
    encoded = json.loads(json.dumps(encode_interval(interval)))
    assert encoded["format"] == "perftop-recording/4"
    decoded = decode_interval(encoded)
    assert decoded.cgroups == CGROUPS
    assert decoded.cgroup_filter == ("/web.service",)
    assert [stack.cgroup_id for stack in decoded.stacks] == [WEB, WEB, DB, NESTED]
    # A version 3 line: six values a stack, no cgroup fields.
    old = dict(encoded, format="perftop-recording/3")
    old["stacks"] = [row[:6] for row in encoded["stacks"]]
    for name in ("cgroups", "cgroup_filter", "cgroups_unavailable"):
        del old[name]
    read = decode_interval(old)
    assert read.cgroups == {} and all(stack.cgroup_id == 0 for stack in read.stacks)
    assert build_view(read).cgroups == ()


def test_recording_refuses_a_damaged_cgroup() -> None:
    from perftop.formats.recording import RecordingError

    encoded = json.loads(json.dumps(encode_interval(_interval(STACKS))))
    encoded["cgroups"][0][1] = 5
    with pytest.raises(RecordingError, match="cgroup path"):
        decode_interval(encoded)


def test_cli_cgroup_of_a_missing_path_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["--batch", "--cgroup", "perftop-no-such-cgroup/\x1b[31mx"])
    assert status == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "\x1b" not in error
    assert error.startswith("perftop: --cgroup ")
    assert "no such cgroup" in error or "not mounted" in error


def test_cli_cgroup_not_a_cgroup_and_empty(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="empty"):
        parse_config(["--cgroup", ""])
    with pytest.raises(UsageError, match="empty path"):
        parse_config(["--cgroup", "/,,/"])
    with pytest.raises(UsageError, match=r"no such cgroup|not mounted"):
        parse_config(["--cgroup", str(tmp_path)])


def test_cli_cgroup_without_cgroup2_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import perftop.system.cgroup_selection as selection

    monkeypatch.setattr(
        selection,
        "find_cgroup2_mount",
        lambda: CgroupsUnavailable("cgroup v2 is not mounted: per-cgroup rows need it"),
    )
    with pytest.raises(UsageError, match="--cgroup: cgroup v2 is not mounted"):
        parse_config(["--cgroup", "system.slice"])


def test_cli_cgroup_of_the_root_and_absolute_paths_are_mount_relative() -> None:
    from perftop.system.cgroups import Cgroup2Mount, find_cgroup2_mount

    found = find_cgroup2_mount()
    if not isinstance(found, Cgroup2Mount):
        pytest.skip(found.reason)
    assert parse_config(["--cgroup", "/"]).sampler.cgroups == ("/",)
    assert parse_config(["--cgroup", str(found.path)]).sampler.cgroups == ("/",)


def test_cli_cgroup_for_a_replay_takes_the_recorded_paths(tmp_path: Path) -> None:
    recording = tmp_path / "r.jsonl"
    recording.write_text(json.dumps(encode_interval(_interval(STACKS))) + "\n")
    config = parse_config(["--replay", str(recording), "--cgroup", "web.service,/x/../db"])
    assert config.sampler.cgroups == ("/web.service", "/db")


def test_replay_filters_by_recorded_cgroup_paths_and_their_children(tmp_path: Path) -> None:
    from perftop.formats.recording import RecordingWriter
    from perftop.sampling.replay import ReplaySource

    path = tmp_path / "r.jsonl"
    with RecordingWriter(path) as writer:
        writer.write(_interval(STACKS))
    replay = ReplaySource(path, interval_s=0)
    replay.set_cgroup_filter(("/web.service",))
    interval = replay.next_interval()
    assert interval is not None
    assert {stack.pid for stack in interval.stacks} == {1, 2, 4}  # 4: in the nested cgroup
    assert interval.cgroup_filter == ("/web.service",)
