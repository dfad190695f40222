from __future__ import annotations

import io
import json
from dataclasses import replace

from perftop.formats.output import FoldedAccumulator, format_json, format_text
from perftop.model.samples import CpuStat, Interval, ProcessInfo
from perftop.profile.view import build_view
from tests.unit.factories import (
    HOSTILE_QUALNAME,
    kernel,
    mixed_python_stacks,
    python,
    stack,
    user,
)

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
    assert "[k]  do_syscall_64" in text


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


# Python frames: a stack of native callers, Python functions, a native leaf and the kernel ----


def python_snapshot() -> Interval:
    """python's main, two Python functions (one on two lines, one hostile), C code, a syscall."""
    stacks = mixed_python_stacks("/srv/app/evil;dir/ev\x1bil.py")
    return Interval(
        timestamp=0.0,
        interval_s=1.0,
        event="cpu-clock",
        frequency_hz=99,
        lost={},
        cpus=(CpuStat(0, 8, 0),),
        stacks=stacks,
        processes={30: ProcessInfo(30)},
    )


def test_text_marks_each_kind_of_function() -> None:
    text = format_text(build_view(python_snapshot()))
    marks = {line.split()[3]: line for line in text.splitlines() if "%" in line and "[" in line}
    assert set(marks) == {"[.]", "[py]", "[k]"}
    assert "[py] handle (work.py:10)" in text
    assert "[k]  do_syscall_64" in text
    assert "[.]  PyLong_FromLong" in text
    assert "\x1b" not in text and "Evil.\\x1b[31m[bold]x[/bold];run (ev\\x1bil.py:3)" in text
    header = next(line for line in text.splitlines() if "SYMBOL" in line)
    row = next(line for line in text.splitlines() if "[py] handle" in line)
    assert header.index("SYMBOL") == row.index("handle")  # the wider mark keeps the columns


def test_json_says_each_function_kind_and_where_a_python_one_is() -> None:
    data = json.loads(format_json(build_view(python_snapshot())))
    functions = {f["symbol"]: f for f in data["functions"]}
    assert {f["kind"] for f in data["functions"]} == {"native", "python", "kernel"}
    assert functions["do_syscall_64"]["kind"] == "kernel"
    native = functions["PyLong_FromLong"]
    assert native["kind"] == "native" and native["module"] == "python3.12"
    assert "file" not in native and "line" not in native and "first_line" not in native
    handle = functions["handle (work.py:10)"]
    assert handle["kind"] == "python" and handle["kernel"] is False
    assert handle["file"] == handle["module"] == "/srv/app/work.py"
    assert handle["first_line"] == 10
    assert handle["line"] == 12  # 5 samples there, 2 on line 14, 1 on no known line
    assert handle["total_samples"] == 8  # one function whatever its line
    hostile = functions[f"{HOSTILE_QUALNAME} (ev\x1bil.py:3)"]  # exact, as JSON escapes
    assert hostile["file"] == "/srv/app/evil;dir/ev\x1bil.py"
    assert (hostile["first_line"], hostile["line"]) == (3, 4)


def test_json_line_is_null_when_no_line_was_known() -> None:
    only = stack(python("idle", line=None), pid=30, comm="py")
    view = build_view(replace(python_snapshot(), stacks=(only,)))
    (function,) = json.loads(format_json(view))["functions"]
    assert function["kind"] == "python" and function["line"] is None
    assert function["first_line"] == 10


def test_folded_python_frames_keep_their_name_literal_and_merge_across_lines() -> None:
    folded = FoldedAccumulator()
    folded.add(python_snapshot().stacks)
    folded.add([stack(user("main", "python3.12"), python("handle", line=13), pid=30, comm="py")])
    out = io.StringIO()
    folded.write(out)
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    assert "py;main;handle (work.py:10) 2" in lines  # on no known line, and on line 13: merged
    assert "py;main;handle (work.py:10);write;do_syscall_64_[k] 2" in lines
    hostile = next(line for line in lines if "Evil" in line)
    path, count = hostile.rsplit(" ", 1)
    assert count == "5"
    assert path.split(";") == [
        "py",
        "main",
        "handle (work.py:10)",
        "Evil.\\x1b[31m[bold]x[/bold]:run (ev\\x1bil.py:3)",  # markup shown as typed
        "PyLong_FromLong",
    ]
