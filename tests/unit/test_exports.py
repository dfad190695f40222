"""Round trips: each export decoded by an independent reader."""

from __future__ import annotations

import gzip
import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest

from perftop.formats.exports import (
    ProfileMeta,
    pprof_bytes,
    speedscope_bytes,
    speedscope_profile,
)
from tests.unit.factories import (
    HOSTILE_QUALNAME,
    kernel,
    mixed_python_stacks,
    python,
    stack,
    user,
)

DATA = Path(__file__).parents[1] / "data"
SCHEMA = Path(__file__).parents[1] / ".cache" / "speedscope-file-format-schema.json"

STACKS = (
    stack(user("main"), user("work"), user("leaf"), pid=10, comm="app", samples=5),
    stack(
        user("main"), user("work"), kernel("do_syscall_64"), pid=10, tid=11, comm="app", samples=2
    ),
    stack(
        user("start"),
        user("evil[/]\x1b[31m", module="libx.so"),
        pid=20,
        comm="x\x1b]0;t\x07",
        samples=1,
    ),
)
META = ProfileMeta(event="cpu-clock", frequency_hz=99, duration_s=2.0, start_time=1_700_000_000.0)


@pytest.fixture(scope="module")
def profile_pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    out = tmp_path_factory.mktemp("pb")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{DATA}",
            f"--python_out={out}",
            "pprof_profile.proto",
        ],
        check=True,
    )
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("pprof_profile_pb2")
    finally:
        sys.path.remove(str(out))


def test_pprof_decodes_with_the_schema(profile_pb2: ModuleType) -> None:
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(pprof_bytes(STACKS, META)))
    strings = list(profile.string_table)
    assert strings[0] == ""
    assert [(strings[t.type], strings[t.unit]) for t in profile.sample_type] == [
        ("samples", "count"),
        ("cpu", "nanoseconds"),
    ]
    assert len(profile.sample) == 3
    assert sum(s.value[0] for s in profile.sample) == 8
    locations = {loc.id: loc for loc in profile.location}
    functions = {f.id: f for f in profile.function}
    mappings = {m.id: m for m in profile.mapping}

    def names(sample: object) -> list[str]:
        result = []
        for location_id in sample.location_id:  # type: ignore[attr-defined]
            location = locations[location_id]
            assert location.mapping_id in mappings
            result.append(strings[functions[location.line[0].function_id].name])
        return result

    assert names(profile.sample[0]) == ["leaf", "work", "main"]  # leaf first
    assert names(profile.sample[1])[0] == "do_syscall_64 [k]"  # perf's mark, in -top too
    assert names(profile.sample[2]) == ["evil[/]\x1b[31m", "start"]
    # Mapping 1 names no binary: a profile of several processes has no main one.
    assert {strings[m.filename] for m in profile.mapping} == {
        "",
        "app",
        "[kernel.kallsyms]",
        "libx.so",
    }
    assert all(m.has_functions for m in profile.mapping)
    labels = {strings[lb.key]: (lb.num, strings[lb.str]) for lb in profile.sample[2].label}
    assert labels["pid"][0] == 20 and labels["comm"][1] == "x\x1b]0;t\x07"
    assert profile.period == 10  # the stacks' mean period (the factory's: 10 per sample)
    assert profile.duration_nanos == 2_000_000_000


def test_speedscope_validates_against_its_schema() -> None:
    document = speedscope_profile(STACKS, META, "test")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(document, schema)
    frames = document["shared"]["frames"]
    whole, first, second = document["profiles"]
    assert document["name"] == whole["name"] == "test"
    # Nanoseconds: each stack's summed sample_period (the factory's: 10 ns per sample).
    assert whole["unit"] == first["unit"] == "nanoseconds"
    assert whole["endValue"] == 80 and whole["weights"] == [50, 20, 10]
    assert first["name"] == "app (pid 10)" and first["endValue"] == 70
    assert second["name"] == "x\x1b]0;t\x07 (pid 20)" and second["endValue"] == 10
    assert [frames[i]["name"] for i in first["samples"][0]] == ["main", "work", "leaf"]
    assert frames[first["samples"][1][-1]]["name"] == "do_syscall_64 [k]"


def test_empty_profile_is_still_valid(profile_pb2: ModuleType) -> None:
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(pprof_bytes((), META)))
    assert len(profile.sample) == 0
    jsonschema.validate(speedscope_profile((), META, "empty"), json.loads(SCHEMA.read_text()))


# Python frames: callers, Python functions (one seen on two lines, one hostile), C, kernel ---

PYTHON_STACKS = mixed_python_stacks()


def test_pprof_python_functions_have_file_and_start_line_and_lines(
    profile_pb2: ModuleType,
) -> None:
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(pprof_bytes(PYTHON_STACKS, META)))
    strings = list(profile.string_table)
    locations = {loc.id: loc for loc in profile.location}
    functions = {f.id: f for f in profile.function}
    mappings = {m.id: m for m in profile.mapping}

    def frames(sample: object) -> list[tuple[str, str, int, int]]:
        """(name, file, start line, line) of each location, leaf first."""
        result = []
        for location_id in sample.location_id:  # type: ignore[attr-defined]
            location = locations[location_id]
            assert location.mapping_id in mappings and len(location.line) == 1
            function = functions[location.line[0].function_id]
            system_name = strings[function.system_name]
            assert system_name == strings[function.name].removesuffix(" [k]")
            result.append(
                (
                    strings[function.name],
                    strings[function.filename],
                    function.start_line,
                    location.line[0].line,
                )
            )
        return result

    assert frames(profile.sample[0]) == [
        ("PyLong_FromLong", "", 0, 0),  # no line info: no file, never the binary's name
        (HOSTILE_QUALNAME, "/srv/app/evil.py", 3, 4),
        ("handle", "/srv/app/work.py", 10, 12),
        ("main", "", 0, 0),
    ]
    assert frames(profile.sample[1]) == [
        ("do_syscall_64 [k]", "", 0, 0),
        ("write", "", 0, 0),
        ("handle", "/srv/app/work.py", 10, 14),
        ("main", "", 0, 0),
    ]
    assert frames(profile.sample[2])[0] == ("handle", "/srv/app/work.py", 10, 0)  # no line
    # One Function for handle, one Location per line it was on; the natives' shared.
    handle = [f.id for f in profile.function if strings[f.name] == "handle"]
    assert len(handle) == 1
    assert sorted(
        loc.line[0].line for loc in profile.location if loc.line[0].function_id in handle
    ) == [0, 12, 14]
    assert len(profile.location) == 8 and len(profile.function) == 6
    python_mapping = next(m for m in profile.mapping if strings[m.filename] == "/srv/app/work.py")
    assert python_mapping.has_filenames and python_mapping.has_line_numbers
    native_mapping = next(m for m in profile.mapping if strings[m.filename] == "libc.so.6")
    assert native_mapping.has_functions and not native_mapping.has_line_numbers


def test_pprof_keeps_python_functions_of_one_name_apart(profile_pb2: ModuleType) -> None:
    # Two lambdas in one file: told apart by their first line, as CPython tells them apart.
    lambdas = (
        stack(python("<lambda>", first_line=5, line=5)),
        stack(python("<lambda>", first_line=9, line=9)),
    )
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(pprof_bytes(lambdas, META)))
    assert sorted(f.start_line for f in profile.function) == [5, 9]
    assert {profile.string_table[f.name] for f in profile.function} == {"<lambda>"}


def test_speedscope_python_frames_have_file_and_first_line() -> None:
    document = speedscope_profile(PYTHON_STACKS, META, "python")
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    frames = document["shared"]["frames"]
    by_name = {frame["name"]: frame for frame in frames}
    # A frame is a function: handle on lines 12, 14 and none is one frame, at its first line.
    assert by_name["handle (work.py:10)"] == {
        "name": "handle (work.py:10)",
        "file": "/srv/app/work.py",
        "line": 10,
    }
    assert by_name[f"{HOSTILE_QUALNAME} (evil.py:3)"]["line"] == 3
    assert by_name["PyLong_FromLong"] == {"name": "PyLong_FromLong", "file": "python3.12"}
    assert by_name["do_syscall_64 [k]"] == {"name": "do_syscall_64 [k]", "file": "[kernel]"}
    assert len(frames) == 6
    whole, profile = document["profiles"]
    assert whole["samples"] == profile["samples"]  # one process: the whole view is it
    assert [frames[i]["name"] for i in profile["samples"][0]] == [
        "main",
        "handle (work.py:10)",
        f"{HOSTILE_QUALNAME} (evil.py:3)",
        "PyLong_FromLong",
    ]
    assert b"\x1b" not in speedscope_bytes(PYTHON_STACKS, META, "python")  # escaped as \u001b
