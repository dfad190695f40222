"""pprof files as perf's and Go's own profiles write them, read by pprof's schema and by
`go tool pprof` itself (Debian's golang-go, installed by scripts/setup-system.sh)."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from perftop.formats.meta import ProfileMeta
from perftop.formats.pprof import pprof_bytes
from perftop.model.samples import ProcessMapping, StackSample
from tests.unit.factories import kernel_at, native
from tests.unit.test_cli_exports import compile_pprof_schema

PERIOD = round(1e9 / 99)
A_CHAIN = "/opt/a/chain"
B_CHAIN = "/opt/b/chain"
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
A_MAP = ProcessMapping(A_CHAIN, "aa11", 0x555555555000, 0x555555556000, 0x1000)
LIBC_MAP = ProcessMapping(LIBC, "cc33", 0x7F0000028000, 0x7F00001BD000, 0x28000)
B_MAP = ProcessMapping(B_CHAIN, "bb22", 0x560000001000, 0x560000002000, 0x1000)
SOURCE_LINE = 5  # c_spin's line in the source file the tests write


def stacks(source: str = "/opt/a/chain.c") -> tuple[StackSample, ...]:
    main_a = native("main", A_CHAIN, 0x1100, build_id="aa11")
    work = native("work", A_CHAIN, 0x1200, build_id="aa11")
    spin = native("c_spin", A_CHAIN, 0x1300, build_id="aa11", source=source, line=SOURCE_LINE)
    write = native("write", LIBC, 0x30000, build_id="cc33")
    syscall = kernel_at("do_syscall_64", 0xFFFFFFFF81000100)
    # A second program called chain: its main must stay its own function.
    main_b = native("main", B_CHAIN, 0x1100, module="b/chain", build_id="bb22")
    return (
        StackSample(10, 10, "chain", (main_a, work, spin), 6, 6 * PERIOD),
        StackSample(10, 11, "chain", (main_a, work, write, syscall), 2, 2 * PERIOD),
        StackSample(20, 20, "chain", (main_b,), 3, 3 * PERIOD),
    )


MAPPINGS = {10: (A_MAP, LIBC_MAP), 20: (B_MAP,)}
META = ProfileMeta("cpu-clock", 99, 2.0, 1_700_000_000.0, mappings=MAPPINGS)


@pytest.fixture(scope="module")
def profile_pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return compile_pprof_schema(tmp_path_factory.mktemp("pb"))


def decode(profile_pb2: ModuleType, data: bytes) -> object:
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(data))
    return profile


def test_mappings_locations_and_functions_say_where_each_frame_is(
    profile_pb2: ModuleType,
) -> None:
    profile = decode(profile_pb2, pprof_bytes(stacks(), META))
    strings = list(profile.string_table)  # type: ignore[attr-defined]
    mappings = {strings[m.filename]: m for m in profile.mapping}  # type: ignore[attr-defined]
    for expected in (A_MAP, LIBC_MAP, B_MAP):
        found = mappings[expected.path]
        assert (found.memory_start, found.memory_limit, found.file_offset) == (
            expected.start,
            expected.limit,
            expected.offset,
        )
        assert strings[found.build_id] == expected.build_id and found.has_functions
    kernel = mappings["[kernel.kallsyms]"]
    assert kernel.has_functions and kernel.memory_start == 0xFFFFFFFF81000100
    # Several processes: mapping 1, which pprof reads as the main binary, names none.
    first = min(profile.mapping, key=lambda m: m.id)  # type: ignore[attr-defined]
    assert strings[first.filename] == "" and first.memory_limit == 0

    functions = {f.id: f for f in profile.function}  # type: ignore[attr-defined]
    by_name = {}
    for location in profile.location:  # type: ignore[attr-defined]
        function = functions[location.line[0].function_id]
        by_name[strings[function.name]] = (location, function)
    spin_location, spin = by_name["c_spin"]
    assert spin_location.address == A_MAP.start + 0x1300 - A_MAP.offset
    assert spin_location.mapping_id == mappings[A_CHAIN].id
    assert strings[spin.filename] == "/opt/a/chain.c" and spin.start_line == SOURCE_LINE
    assert spin_location.line[0].line == SOURCE_LINE
    write_location, write = by_name["write"]
    assert write_location.address == LIBC_MAP.start + 0x30000 - LIBC_MAP.offset
    assert strings[write.filename] == ""  # no line info: empty, never the binary's name
    syscall_location, syscall = by_name["do_syscall_64 [k]"]
    assert syscall_location.mapping_id == kernel.id
    assert syscall_location.address == 0xFFFFFFFF81000100
    assert strings[syscall.system_name] == "do_syscall_64"
    # Two binaries called chain: two functions called main, their locations in each one.
    assert by_name["main (b/chain)"][0].mapping_id == mappings[B_CHAIN].id
    assert by_name["main"][0].mapping_id == mappings[A_CHAIN].id

    labels = [
        {strings[label.key]: label.num or strings[label.str] for label in sample.label}
        for sample in profile.sample  # type: ignore[attr-defined]
    ]
    assert labels[1] == {"pid": 10, "tid": 11, "comm": "chain"}
    assert [list(s.value) for s in profile.sample] == [  # type: ignore[attr-defined]
        [6, 6 * PERIOD],
        [2, 2 * PERIOD],
        [3, 3 * PERIOD],
    ]
    assert profile.period == PERIOD  # type: ignore[attr-defined]


def test_a_profile_of_one_process_has_its_program_as_main_binary(
    profile_pb2: ModuleType,
) -> None:
    one = tuple(stack for stack in stacks() if stack.pid == 10)
    profile = decode(profile_pb2, pprof_bytes(one, META))
    first = min(profile.mapping, key=lambda m: m.id)  # type: ignore[attr-defined]
    assert profile.string_table[first.filename] == A_CHAIN  # type: ignore[attr-defined]


def test_a_process_without_known_mappings_still_locates_its_functions(
    profile_pb2: ModuleType,
) -> None:
    # A recording made before perftop kept mappings: the file alone, at the file offset.
    profile = decode(profile_pb2, pprof_bytes(stacks(), ProfileMeta()))
    strings = list(profile.string_table)  # type: ignore[attr-defined]
    chain = next(m for m in profile.mapping if strings[m.filename] == A_CHAIN)  # type: ignore[attr-defined]
    assert strings[chain.build_id] == "aa11" and chain.memory_limit == 0
    addresses = {loc.address for loc in profile.location if loc.mapping_id == chain.id}  # type: ignore[attr-defined]
    assert addresses == {0x1100, 0x1200, 0x1300}


def test_hostile_names_and_paths_are_kept_literally(profile_pb2: ModuleType) -> None:
    path = "/tmp/\x1b[31mevil;dir/[bold]x\x07"
    hostile = native("f\x1b]0;t\x07", path, 0x10)
    mapping = ProcessMapping(path, "", 0x1000, 0x2000, 0)
    meta = ProfileMeta(mappings={7: (mapping,)})
    profile = decode(
        profile_pb2, pprof_bytes((StackSample(7, 7, "\x1b[2J", (hostile,), 1, 1),), meta)
    )
    strings = list(profile.string_table)  # type: ignore[attr-defined]
    assert path in strings and "f\x1b]0;t\x07" in strings and "\x1b[2J" in strings


# -- go tool pprof ------------------------------------------------------------------------------


def go_pprof(tmp_path: Path, *args: str) -> str:
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("go is not installed: scripts/setup-system.sh installs golang-go")
        pytest.skip("go is not installed (make setup installs golang-go)")
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PPROF_TMPDIR": str(tmp_path),
        "GOCACHE": str(tmp_path / "gocache"),
        "GOTOOLCHAIN": "local",
    }
    done = subprocess.run(
        [go, "tool", "pprof", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def profile_file(tmp_path: Path) -> Path:
    source = tmp_path / "chain.c"
    lines = [f"/* line {n} */" for n in range(1, 10)]
    lines[SOURCE_LINE - 1] = "void c_spin(void) { for (;;) sink++; }"
    source.write_text("\n".join(lines) + "\n")
    path = tmp_path / "profile.pb.gz"
    path.write_bytes(pprof_bytes(stacks(str(source)), META))
    return path


def test_go_pprof_raw_shows_mappings_with_ranges_offsets_and_build_ids(
    tmp_path: Path, profile_file: Path
) -> None:
    raw = go_pprof(tmp_path, "-raw", str(profile_file))
    assert "0x555555555000/0x555555556000/0x1000 /opt/a/chain aa11" in raw
    assert "0x560000001000/0x560000002000/0x1000 /opt/b/chain bb22" in raw
    assert "[kernel.kallsyms]" in raw
    # The location of c_spin: its address, then its function with its file and line.
    address = f"{A_MAP.start + 0x300:x}"
    assert re.search(rf"0x{address} M=\d+ c_spin \S*chain.c:{SOURCE_LINE}", raw), raw


def test_go_pprof_top_total_is_samples_times_period_and_two_mains_stay_apart(
    tmp_path: Path, profile_file: Path
) -> None:
    top = go_pprof(tmp_path, "-top", str(profile_file))
    samples = sum(stack.samples for stack in stacks())
    total_ms = samples * PERIOD / 1e6
    assert f"{total_ms:.2f}ms total" in top, top
    assert "File:" not in top  # several processes: no main binary
    flat_of = {
        " ".join(fields[5:]): fields[0]
        for fields in (line.split() for line in top.splitlines())
        if len(fields) > 5 and fields[1].endswith("%") and fields[4].endswith("%")
    }
    assert flat_of["main (b/chain)"] == f"{3 * PERIOD / 1e6:.2f}ms"
    assert "main" in flat_of and flat_of["main"] == "0"  # a/chain's main: never a leaf


def test_go_pprof_top_heads_a_one_process_profile_with_its_program(tmp_path: Path) -> None:
    one = tuple(stack for stack in stacks() if stack.pid == 10)
    path = tmp_path / "one.pb.gz"
    path.write_bytes(pprof_bytes(one, META))
    assert "File: chain" in go_pprof(tmp_path, "-top", str(path))


def test_go_pprof_traces_mark_kernel_frames(tmp_path: Path, profile_file: Path) -> None:
    traces = go_pprof(tmp_path, "-traces", str(profile_file))
    assert "do_syscall_64 [k]" in traces
    assert re.search(r"comm:\s*\[?chain\]?", traces) or "chain" in traces
    assert "pid:" in traces


def test_go_pprof_list_shows_the_source_line(tmp_path: Path, profile_file: Path) -> None:
    listing = go_pprof(tmp_path, "-list", "c_spin", str(profile_file))
    line = next(line for line in listing.splitlines() if "void c_spin" in line)
    flat = f"{6 * PERIOD / 1e6:.2f}ms"
    assert line.split()[0] == flat and line.split()[2].startswith(f"{SOURCE_LINE}:"), listing
