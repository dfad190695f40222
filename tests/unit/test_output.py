from __future__ import annotations

import io
import json

from perftop.formats.output import FoldedAccumulator, format_json, format_text
from perftop.model.samples import CpuStat, Interval, ProcessInfo
from perftop.profile.view import build_view
from tests.unit.factories import kernel, stack, user

HOSTILE_COMM = "[bold red]x[/]\x1b]0;owned\x07"
HOSTILE_SYMBOL = "evil[/]\x1b[31m\u202e;x"


def hostile_snapshot() -> Interval:
    stacks = (
        stack(user("main"), user(HOSTILE_SYMBOL), pid=7, comm=HOSTILE_COMM, samples=3),
        stack(user("main"), kernel("do_syscall_64"), pid=8, comm="ok", samples=1),
    )
    infos = {7: ProcessInfo(7, user="eve\x1b[2J", cmdline="run \x1b[2J[red]now[/]")}
    return Interval(
        timestamp=0.0,
        interval_s=1.0,
        event="cpu-clock",
        frequency_hz=99,
        lost={"counts_map_full": 0},
        cpus=(CpuStat(0, 4, 10),),
        stacks=stacks,
        processes=infos,
    )


def test_text_has_no_raw_control_characters() -> None:
    text = format_text(build_view(hostile_snapshot()))
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "[bold red]x[/]\\x1b]0;owned\\x07" in text
    assert "evil[/]\\x1b[31m\\u202e;x" in text
    assert "run \\x1b[2J[red]now[/]" in text
    assert "[k] do_syscall_64" in text


def test_json_carries_exact_strings_as_escapes() -> None:
    line = format_json(build_view(hostile_snapshot()))
    assert "\x1b" not in line and "\u202e" not in line  # ensure_ascii escapes them
    data = json.loads(line)
    assert data["processes"][0]["comm"] == HOSTILE_COMM
    assert data["processes"][0]["percent"] == 75.0
    assert {f["symbol"] for f in data["functions"]} >= {HOSTILE_SYMBOL, "do_syscall_64"}
    assert data["cpus"] == [{"cpu": 0, "samples": 4, "idle_samples": 10}]
    for field in (
        "timestamp",
        "interval_s",
        "event",
        "frequency_hz",
        "samples",
        "idle_samples",
        "lost",
        "processes",
        "functions",
    ):
        assert field in data


def test_folded_lines_are_safe_and_parseable() -> None:
    folded = FoldedAccumulator()
    folded.add(hostile_snapshot().stacks)
    folded.add(hostile_snapshot().stacks)
    out = io.StringIO()
    folded.write(out)
    lines = out.getvalue().splitlines()
    assert "ok;main;do_syscall_64_[k] 2" in lines
    hostile = next(line for line in lines if line.startswith("[bold"))
    path, count = hostile.rsplit(" ", 1)
    assert count == "6"
    assert path.split(";") == [
        "[bold red]x[/]\\x1b]0:owned\\x07",
        "main",
        "evil[/]\\x1b[31m\\u202e:x",
    ]
