"""perftop.sampling.bcc.abi against bpf/profile.bpf.c: a small parser reads the C file's
`#define`s, structs and map declarations, and every number and layout the Python side uses
must agree with it. The mutation tests feed it edited copies of the C text, so the check is
shown to fail when the two drift apart."""

from __future__ import annotations

import ctypes as ct
import re
from dataclasses import dataclass

import pytest

from perftop.sampling.bcc import abi
from perftop.unwind.table import ROW_SIZE, CfaRuleKind, RbpRuleKind

# The rule numbers the walker switches on are perftop.unwind's, which writes the rows.
CFA_RULES = {f"CFA_{kind.name}": int(kind) for kind in CfaRuleKind}
RBP_RULES = {f"RBP_{kind.name}": int(kind) for kind in RbpRuleKind}

TASK_COMM_LEN = 16  # include/linux/sched.h: a kernel ABI constant, not perftop's to choose
C_TYPES = {
    "u8": (1, ct.c_uint8),
    "u16": (2, ct.c_uint16),
    "s16": (2, ct.c_int16),
    "u32": (4, ct.c_uint32),
    "s32": (4, ct.c_int32),
    "u64": (8, ct.c_uint64),
    "char": (1, ct.c_char),
}


@dataclass(frozen=True, slots=True)
class CField:
    name: str
    type: str  # u8, u16, u32, s32, u64 or char
    count: int  # array length; 1 for a scalar


@dataclass(frozen=True, slots=True)
class CMap:
    kind: str  # BPF_HASH, BPF_ARRAY, ...
    name: str
    arguments: tuple[str, ...]  # after the name, as written


@dataclass(frozen=True, slots=True)
class CProgram:
    defines: dict[str, int]
    structs: dict[str, tuple[CField, ...]]
    maps: dict[str, CMap]


def _without_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _value(expression: str, defines: dict[str, int]) -> int:
    """An integer, a defined name, or a product of those (`GENERATIONS * LOST_COUNT`)."""
    result = 1
    for factor in expression.split("*"):
        token = factor.strip().strip("()").strip()
        if re.fullmatch(r"-?(0x[0-9a-fA-F]+|\d+)", token):
            result *= int(token, 0)
        elif token in defines:
            result *= defines[token]
        else:
            raise ValueError(f"cannot evaluate {expression!r}")
    return result


def parse(text: str) -> CProgram:
    text = _without_comments(text)
    defines = {"TASK_COMM_LEN": TASK_COMM_LEN}
    for name, value in re.findall(r"^\s*#define\s+(\w+)\s+(.+?)\s*$", text, flags=re.M):
        if re.fullmatch(r"\(?-?(0x[0-9a-fA-F]+|\d+)\)?", value):
            defines[name] = _value(value, defines)
    structs = {}
    for name, body in re.findall(r"struct\s+(\w+)\s*\{([^}]*)\}\s*;", text):
        fields = []
        for declaration in filter(None, (part.strip() for part in body.split(";"))):
            match = re.fullmatch(
                r"(u8|u16|s16|u32|s32|u64|char)\s+(\w+)\s*(?:\[\s*(\w+)\s*\])?", declaration
            )
            if match is None:
                raise ValueError(f"struct {name}: cannot read {declaration!r}")
            count = _value(match.group(3), defines) if match.group(3) else 1
            fields.append(CField(match.group(2), match.group(1), count))
        structs[name] = tuple(fields)
    maps = {}
    for kind, arguments in re.findall(
        r"^\s*(BPF_\w+)\s*\(([^)]*(?:\([^)]*\))?[^)]*)\)\s*;", text, re.M
    ):
        parts = [part.strip() for part in arguments.split(",")]
        if kind == "BPF_TABLE":  # BPF_TABLE("type", key, value, name, entries)
            maps[parts[3]] = CMap(kind, parts[3], (parts[0], *parts[1:3], *parts[4:]))
        else:
            maps[parts[0]] = CMap(kind, parts[0], tuple(parts[1:]))
    return CProgram(defines, structs, maps)


def _c_layout(fields: tuple[CField, ...]) -> tuple[list[tuple[str, int, int]], int]:
    """(name, offset, size) of each field under the C ABI's natural alignment, and the size."""
    offset, alignment, layout = 0, 1, []
    for field in fields:
        size, _ = C_TYPES[field.type]
        offset = -(-offset // size) * size
        layout.append((field.name, offset, size * field.count))
        offset += size * field.count
        alignment = max(alignment, size)
    return layout, -(-offset // alignment) * alignment


def _struct_mismatches(
    c_name: str, fields: tuple[CField, ...], mirror: type[ct.Structure]
) -> list[str]:
    problems = []
    names = [name for name, _ in mirror._fields_]
    if [field.name for field in fields] != names:
        return [f"struct {c_name}: fields {[f.name for f in fields]} in C, {names} in abi.py"]
    for field, (name, python_type) in zip(fields, mirror._fields_, strict=True):
        _, c_type = C_TYPES[field.type]
        expected: type = c_type * field.count if field.count > 1 else c_type
        if ct.sizeof(expected) != ct.sizeof(python_type) or getattr(
            python_type, "_type_", python_type
        ) != getattr(expected, "_type_", expected):
            problems.append(
                f"struct {c_name}.{name}: {field.type}[{field.count}] in C, {python_type} in abi.py"
            )
    layout, size = _c_layout(fields)
    for name, offset, field_size in layout:
        descriptor = getattr(mirror, name)
        if (descriptor.offset, descriptor.size) != (offset, field_size):
            problems.append(
                f"struct {c_name}.{name}: offset {offset} size {field_size} in C, "
                f"{descriptor.offset} {descriptor.size} in abi.py"
            )
    if size != ct.sizeof(mirror):
        problems.append(f"struct {c_name}: {size} bytes in C, {ct.sizeof(mirror)} in abi.py")
    return problems


def abi_mismatches(text: str) -> list[str]:
    """Every way the C text and abi.py disagree; empty when they agree."""
    program = parse(text)
    defines = program.defines
    problems = []

    def expect(name: str, value: int) -> None:
        if defines.get(name) != value:
            problems.append(f"{name}: {defines.get(name)} in C, {value} in abi.py")

    expect("PERFTOP_COUNTS_ENTRIES", abi.COUNTS_ENTRIES_DEFAULT)
    expect("PERFTOP_STACK_ENTRIES", abi.STACK_ENTRIES_DEFAULT)
    expect("PERFTOP_MAX_PIDS", abi.MAX_PIDS)
    expect("PERFTOP_MAX_CGROUPS", abi.MAX_CGROUPS)
    expect("PERFTOP_STACK_SKIPPED", abi.STACK_SKIPPED)
    expect("STACKS_KERNEL", abi.STACKS_KERNEL)
    expect("STACKS_USER", abi.STACKS_USER)
    expect("GENERATIONS", abi.GENERATIONS)
    expect("PERFTOP_PYTHON_FRAMES", abi.PYTHON_FRAMES)
    expect("PERFTOP_PYTHON_THREADS", abi.PYTHON_THREADS)
    expect("PERFTOP_PYTHON_STACK_ENTRIES", abi.PYTHON_STACK_ENTRIES_DEFAULT)
    expect("PERFTOP_PYTHON_PROCS", abi.PYTHON_PROCS_DEFAULT)
    expect("PERFTOP_PYTHON_THREAD_ENTRIES", abi.PYTHON_THREAD_ENTRIES_DEFAULT)
    expect("PYTHON_THREAD_RETRY_NS", abi.PYTHON_THREAD_RETRY_NS)
    expect("PYTHON_NO_OFFSET", abi.PYTHON_NO_OFFSET)
    expect("PYTHON_NO_OWNER", abi.PYTHON_NO_OWNER)
    expect("PYTHON_HEADER_BYTES", abi.PYTHON_HEADER_BYTES)
    expect("PERFTOP_UNWIND_ROWS", abi.UNWIND_ROWS_DEFAULT)
    expect("PERFTOP_UNWIND_MAPPINGS", abi.UNWIND_MAPPINGS_DEFAULT)
    expect("PERFTOP_NATIVE_STACK_ENTRIES", abi.NATIVE_STACK_ENTRIES_DEFAULT)
    expect("PERFTOP_UNWIND_FRAMES", abi.UNWIND_FRAMES)
    expect("UNWIND_SEARCH_STEPS", abi.UNWIND_SEARCH_STEPS)
    expect("UNWIND_WHOLE", abi.UNWIND_WHOLE)
    expect("UNWIND_TRUNCATED", abi.UNWIND_TRUNCATED)
    expect("UNWIND_STOPPED", abi.UNWIND_STOPPED)
    for name, rule in CFA_RULES.items():
        expect(name, rule)
    for name, rule in RBP_RULES.items():
        expect(name, rule)
    settings = {"SETTING_PID_FILTER": abi.SETTING_PID_FILTER, "SETTING_STACKS": abi.SETTING_STACKS}
    settings["SETTING_GENERATION"] = abi.SETTING_GENERATION
    settings["SETTING_PYTHON"] = abi.SETTING_PYTHON
    settings["SETTING_UNWIND"] = abi.SETTING_UNWIND
    settings["SETTING_CGROUP_FILTER"] = abi.SETTING_CGROUP_FILTER
    c_settings = {name for name in defines if name.startswith("SETTING_")}
    if c_settings != settings.keys():
        problems.append(f"settings slots {sorted(c_settings)} in C, {sorted(settings)} in abi.py")
    for name, slot in settings.items():
        expect(name, slot)
    expect("SETTINGS_COUNT", abi.SETTINGS_COUNT)
    c_lost = {name for name in defines if name.startswith("LOST_") and name != "LOST_COUNT"}
    if c_lost != abi.LOST_SLOTS.keys():
        problems.append(f"lost slots {sorted(c_lost)} in C, {sorted(abi.LOST_SLOTS)} in abi.py")
    for name, slot in abi.LOST_SLOTS.items():
        expect(name, slot)
    expect("LOST_COUNT", abi.LOST_COUNT)
    if sorted(abi.LOST_SLOTS.values()) != list(range(len(abi.LOST_NAMES))):
        problems.append("abi.py: LOST_SLOTS do not number LOST_NAMES 0..n-1")

    for c_name, mirror in (
        ("count_key", abi.CountKey),
        ("count_value", abi.CountValue),
        ("cpu_totals", abi.CpuTotals),
        ("python_proc", abi.PythonProc),
        ("python_thread", abi.PythonThread),
        ("python_stack", abi.PythonStack),
        ("unwind_row", abi.UnwindRow),
        ("mapping_key", abi.MappingKey),
        ("mapping_value", abi.MappingValue),
        ("native_stack", abi.NativeStack),
        ("unwind_miss", abi.UnwindMiss),
    ):
        if c_name not in program.structs:
            problems.append(f"struct {c_name}: missing in C")
        else:
            problems += _struct_mismatches(c_name, program.structs[c_name], mirror)
    if abi.KEY_FORMAT.size != ct.sizeof(abi.CountKey) or abi.VALUE_FORMAT.size != ct.sizeof(
        abi.CountValue
    ):
        problems.append("abi.py: the struct formats do not cover the structs")

    def expect_map(name: str, kind: str, *arguments: str) -> None:
        found = program.maps.get(name)
        if found is None or found.kind != kind or found.arguments[: len(arguments)] != arguments:
            problems.append(
                f"map {name}: {found} in C, {kind}{(name, *arguments)} expected by abi.py"
            )

    for counts in abi.COUNTS_MAPS:
        expect_map(
            counts.decode(),
            "BPF_HASH",
            "struct count_key",
            "struct count_value",
            "PERFTOP_COUNTS_ENTRIES",
        )
    hashes = {
        name
        for name, found in program.maps.items()
        if found.kind == "BPF_HASH" and name.startswith("counts")
    }
    if hashes != {name.decode() for name in abi.COUNTS_MAPS}:
        problems.append(f"counts maps {sorted(hashes)} in C, {abi.COUNTS_MAPS} in abi.py")
    if len(abi.COUNTS_MAPS) != abi.GENERATIONS:
        problems.append("abi.py: one counts map per generation")
    expect_map("settings", "BPF_ARRAY", "u32", "SETTINGS_COUNT")
    expect_map("pid_filter", "BPF_HASH", "u32", "u8", "PERFTOP_MAX_PIDS")
    expect_map("cgroup_filter", "BPF_CGROUP_ARRAY", "PERFTOP_MAX_CGROUPS")
    expect_map("stacks", "BPF_STACK_TRACE", "PERFTOP_STACK_ENTRIES")
    expect_map("cpu_totals", "BPF_PERCPU_ARRAY", "struct cpu_totals")
    expect_map("lost", "BPF_PERCPU_ARRAY", "u64")
    expect_map("python_procs", "BPF_HASH", "u32", "struct python_proc", "PERFTOP_PYTHON_PROCS")
    expect_map(
        "python_threads",
        "BPF_TABLE",
        '"lru_hash"',
        "u64",
        "struct python_thread",
        "PERFTOP_PYTHON_THREAD_ENTRIES",
    )
    expect_map("python_scratch", "BPF_PERCPU_ARRAY", "struct python_stack", "1")
    expect_map("python_headers", "BPF_PERCPU_ARRAY", "struct python_header", "1")
    expect_map(
        "python_stacks", "BPF_HASH", "u64", "struct python_stack", "PERFTOP_PYTHON_STACK_ENTRIES"
    )
    expect_map("unwind_rows", "BPF_ARRAY", "struct unwind_row", "PERFTOP_UNWIND_ROWS")
    expect_map(
        "unwind_mappings",
        "BPF_LPM_TRIE",
        "struct mapping_key",
        "struct mapping_value",
        "PERFTOP_UNWIND_MAPPINGS",
    )
    expect_map("native_scratch", "BPF_PERCPU_ARRAY", "struct native_stack", "1")
    expect_map("unwind_misses", "BPF_HASH", "struct unwind_miss", "u64", "1024")
    expect_map(
        "native_stacks", "BPF_HASH", "u64", "struct native_stack", "PERFTOP_NATIVE_STACK_ENTRIES"
    )
    if ct.sizeof(abi.UnwindRow) != ROW_SIZE:
        problems.append(
            f"unwind_row: {ct.sizeof(abi.UnwindRow)} bytes, perftop.unwind writes {ROW_SIZE}"
        )
    for name, entries in (
        ("cpu_totals", abi.GENERATIONS),
        ("lost", abi.GENERATIONS * abi.LOST_COUNT),
    ):
        found = program.maps.get(name)
        if found is not None and _value(found.arguments[-1], defines) != entries:
            problems.append(f"map {name}: {found.arguments[-1]} entries in C, {entries} in abi.py")
    return problems


@pytest.fixture(scope="module")
def c_text() -> str:
    return abi.BPF_SOURCE.read_text()


def test_the_program_and_its_mirror_agree(c_text: str) -> None:
    assert abi_mismatches(c_text) == []


def test_the_parser_reads_the_real_file(c_text: str) -> None:
    """Guards the guard: a parser that found nothing would find nothing wrong."""
    program = parse(c_text)
    names = [field.name for field in program.structs["count_key"]]
    assert names[-4:] == ["comm", "python_stack", "native_stack", "cgroup_id"]
    assert program.structs["count_key"][-4].count == TASK_COMM_LEN
    assert program.structs["native_stack"][-1].count == abi.UNWIND_FRAMES
    assert program.structs["python_stack"][-1].count == abi.PYTHON_FRAMES
    assert {
        "counts_0",
        "counts_1",
        "stacks",
        "settings",
        "cpu_totals",
        "lost",
        "python_procs",
        "python_stacks",
    } <= program.maps.keys()
    assert program.defines["LOST_COUNT"] == 13
    assert program.defines["PYTHON_NO_OFFSET"] == 0xFFFF


@pytest.mark.parametrize(
    ("edit", "old", "new", "complaint"),
    [
        (
            "fields swapped",
            "u32 tgid;\n    u32 tid;",
            "u32 tid;\n    u32 tgid;",
            "struct count_key: fields",
        ),
        ("field widened", "s32 user_stack_id;", "u64 user_stack_id;", "count_key.user_stack_id"),
        ("comm longer", "char comm[TASK_COMM_LEN];", "char comm[32];", "count_key.comm"),
        (
            "field added",
            "u64 filtered_samples;",
            "u64 filtered_samples;\n    u64 extra;",
            "struct cpu_totals: fields",
        ),
        (
            "slot renumbered",
            "#define SETTING_STACKS 1",
            "#define SETTING_STACKS 3",
            "SETTING_STACKS: 3 in C",
        ),
        (
            "slot added",
            "#define SETTINGS_COUNT 6",
            "#define SETTING_OTHER 6\n#define SETTINGS_COUNT 7",
            "settings slots",
        ),
        (
            "lost slot added",
            "#define LOST_COUNT 13",
            "#define LOST_FILTERED 13\n#define LOST_COUNT 14",
            "lost slots",
        ),
        (
            "limit changed",
            "#define PERFTOP_MAX_PIDS 64",
            "#define PERFTOP_MAX_PIDS 128",
            "PERFTOP_MAX_PIDS",
        ),
        (
            "cgroup id narrowed",
            "u64 cgroup_id;",
            "u32 cgroup_id;",
            "count_key.cgroup_id",
        ),
        (
            "cgroup key dropped",
            "    u64 cgroup_id;     // the task's",
            "    // the task's",
            "struct count_key: fields",
        ),
        (
            "cgroup filter resized",
            "#define PERFTOP_MAX_CGROUPS 16 ",
            "#define PERFTOP_MAX_CGROUPS 8 ",
            "PERFTOP_MAX_CGROUPS",
        ),
        (
            "cgroup slot renumbered",
            "#define SETTING_CGROUP_FILTER 5",
            "#define SETTING_CGROUP_FILTER 7",
            "SETTING_CGROUP_FILTER: 7 in C",
        ),
        (
            "cgroup filter a hash",
            "BPF_CGROUP_ARRAY(cgroup_filter,",
            "BPF_HASH(cgroup_filter,",
            "map cgroup_filter",
        ),
        ("skip marker changed", "(-65536)", "(-65535)", "PERFTOP_STACK_SKIPPED"),
        ("python offset narrowed", "u16 frame_owner;", "u8 frame_owner;", "python_proc"),
        ("python depth changed", "PYTHON_FRAMES 64 ", "PYTHON_FRAMES 32 ", "PERFTOP_PYTHON_FRAMES"),
        ("unwind rule renumbered", "#define CFA_END 5", "#define CFA_END 6", "CFA_END"),
        ("row field narrowed", "s32 cfa_offset;", "s16 cfa_offset;", "unwind_row"),
        ("one generation", "#define GENERATIONS 2", "#define GENERATIONS 1", "GENERATIONS"),
        ("lost map halved", "GENERATIONS * LOST_COUNT);", "LOST_COUNT);", "map lost"),
        ("counts map renamed", "BPF_HASH(counts_1,", "BPF_HASH(counts_b,", "map counts_1"),
    ],
)
def test_a_drift_is_caught(c_text: str, edit: str, old: str, new: str, complaint: str) -> None:
    assert c_text.count(old) == 1, f"{edit}: the C file no longer contains {old!r}"
    problems = abi_mismatches(c_text.replace(old, new))
    assert any(complaint in problem for problem in problems), (edit, problems)


def test_a_drained_count_is_a_tuple_the_collector_lets_go_of() -> None:
    """A heavy interval drains tens of thousands of counts: as plain tuples of ints and bytes,
    CPython untracks them at their first collection, so no full collection walks them."""
    import gc

    from perftop.sampling.bcc.abi import KEY_FORMAT, VALUE_FORMAT
    from perftop.sampling.bcc.drain import _entry

    entry = _entry(bytes(range(KEY_FORMAT.size)), bytes(VALUE_FORMAT.size))
    assert type(entry) is tuple and len(entry) == 10
    gc.collect()
    assert not gc.is_tracked(entry)
