"""Real profiles from the real sampler, opened with `go tool pprof`: a C program built with -g
here lists its source line, the kernel's frames are marked and in perf's kernel mapping, two
binaries of one name stay two, and the total is samples x period."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.test_cli_exports import compile_pprof_schema
from tests.unit.test_pprof import go_pprof

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

ROOT = Path(__file__).parents[2]
SOURCE = Path(__file__).parent / "spin.c"
SPIN_LINE = 5  # the line of tests/bpf/spin.c that defines c_spin
COMM = "perftop_spin"


@pytest.fixture(scope="module")
def profile_pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return compile_pprof_schema(tmp_path_factory.mktemp("pb"))


def build(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / "spin.c"
    shutil.copy(SOURCE, source)
    binary = directory / COMM
    subprocess.run(
        ["gcc", "-g", "-O0", "-fno-omit-frame-pointer", "-o", str(binary), str(source)],
        check=True,
    )
    return binary


@pytest.fixture
def two_spins(tmp_path: Path) -> Iterator[tuple[tuple[Path, Path], list[subprocess.Popen[bytes]]]]:
    binaries = (build(tmp_path / "one"), build(tmp_path / "two"))
    processes = [subprocess.Popen([str(binary), "60"]) for binary in binaries]
    time.sleep(0.1)
    try:
        yield binaries, processes
    finally:
        for process in processes:
            process.kill()
            process.wait()


def record(out: Path, *args: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "perftop",
            "--batch",
            "-n",
            "2",
            "--format",
            "pprof",
            "-o",
            str(out),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,  # a system-wide first interval symbolizes every process on the machine
    )
    assert done.returncode == 0, done.stderr


def test_one_process_profile_lists_source_and_heads_with_its_program(
    two_spins: tuple[tuple[Path, Path], list[subprocess.Popen[bytes]]],
    tmp_path: Path,
    profile_pb2: ModuleType,
) -> None:
    (binary, _), (process, _) = two_spins
    out = tmp_path / "one.pb.gz"
    record(out, "-p", str(process.pid))
    top = go_pprof(tmp_path, "-top", str(out))
    assert f"File: {COMM}" in top
    assert re.search(r"\bc_spin\b", top), top
    # The total pprof shows is samples x period (the mean sample_period of the run).
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(out.read_bytes()))
    samples = sum(sample.value[0] for sample in profile.sample)
    assert samples >= 10
    total = samples * profile.period
    assert abs(sum(sample.value[1] for sample in profile.sample) - total) <= samples
    shown = re.search(r"of ([\d.]+)(m?s) total", top)
    assert shown is not None, top
    scale = 1e-3 if shown.group(2) == "ms" else 1.0
    assert abs(float(shown.group(1)) * scale - total / 1e9) <= 0.01 * total / 1e9
    # c_spin was built with -g: its file and line come from DWARF, and -list shows the source.
    listing = go_pprof(tmp_path, "-list", "^c_spin$", str(out))
    source_line = next(line for line in listing.splitlines() if "void c_spin(" in line)
    fields = source_line.split()
    assert fields[2].startswith(f"{SPIN_LINE}:") and fields[0] != ".", listing
    raw = go_pprof(tmp_path, "-raw", str(out))
    build_id = (
        subprocess.run(["readelf", "-n", str(binary)], capture_output=True, text=True, check=True)
        .stdout.split("Build ID:")[1]
        .split()[0]
    )
    mapping = re.search(
        rf"0x([0-9a-f]+)/0x([0-9a-f]+)/0x([0-9a-f]+) {re.escape(str(binary))} {build_id}", raw
    )
    assert mapping is not None, raw
    assert int(mapping.group(1), 16) < int(mapping.group(2), 16)
    assert "[kernel.kallsyms]" in raw


def test_system_wide_profile_keeps_two_programs_of_one_name_apart(
    two_spins: tuple[tuple[Path, Path], list[subprocess.Popen[bytes]]],
    tmp_path: Path,
) -> None:
    binaries, processes = two_spins
    out = tmp_path / "all.pb.gz"
    record(out)
    top = go_pprof(tmp_path, "-top", str(out))
    assert "File:" not in top  # system-wide: no process's program heads it
    spins = sorted({m.group(0) for m in re.finditer(r"c_spin(?: \([^)]*\))?", top)})
    assert len(spins) == 2, top  # c_spin and c_spin (two/perftop_spin), or the other way
    traces = go_pprof(tmp_path, "-traces", str(out))
    assert re.search(r"\S+ \[k\]", traces), traces[:2000]  # kernel frames marked
    for process in processes:
        assert f"pid:{process.pid}" in traces.replace(" ", "") or str(process.pid) in traces
    raw = go_pprof(tmp_path, "-raw", str(out))
    for binary in binaries:
        assert f" {binary} " in raw
