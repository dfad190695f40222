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

from perftop.formats.exports import ProfileMeta, pprof_bytes, speedscope_profile
from tests.unit.factories import kernel, stack, user

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
    assert names(profile.sample[1])[0] == "do_syscall_64"
    assert names(profile.sample[2]) == ["evil[/]\x1b[31m", "start"]
    assert {strings[m.filename] for m in profile.mapping} == {"app", "[kernel]", "libx.so"}
    labels = {strings[lb.key]: (lb.num, strings[lb.str]) for lb in profile.sample[2].label}
    assert labels["pid"][0] == 20 and labels["comm"][1] == "x\x1b]0;t\x07"
    assert profile.period == round(1e9 / 99)
    assert profile.duration_nanos == 2_000_000_000


def test_speedscope_validates_against_its_schema() -> None:
    document = speedscope_profile(STACKS, META, "test")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(document, schema)
    frames = document["shared"]["frames"]
    first = document["profiles"][0]
    assert first["name"] == "app (pid 10)" and first["endValue"] == 7
    assert [frames[i]["name"] for i in first["samples"][0]] == ["main", "work", "leaf"]
    assert frames[first["samples"][1][-1]]["name"] == "do_syscall_64 [k]"


def test_empty_profile_is_still_valid(profile_pb2: ModuleType) -> None:
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(pprof_bytes((), META)))
    assert len(profile.sample) == 0
    jsonschema.validate(speedscope_profile((), META, "empty"), json.loads(SCHEMA.read_text()))
