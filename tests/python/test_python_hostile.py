"""A process that fakes a CPython runtime gets nonsense or a reason, fast and bounded, never an
exception: every variant of tests/python/hostile_runtime.c is detected and walked here."""

from __future__ import annotations

import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from perftop.python import (
    CodeReader,
    ProcessMemory,
    PythonRuntime,
    UnsupportedPython,
    detect_python,
    raw_frames,
    thread_states,
    walk_process,
)
from perftop.python.threads import MAX_FRAMES, current_frame
from tests.python.conftest import tracer_pid

SOURCE = Path(__file__).parent / "hostile_runtime.c"
# Detection plus a whole walk of a real process takes ~2 ms here; a fake must not cost much more.
TIME_LIMIT_SECONDS = 0.5
# Everything the readers may keep or build for one fake process; a 2**62-byte claimed string
# or an endless chain would blow far past it.
ALLOCATION_LIMIT_BYTES = 1 << 20

VARIANTS = {
    "loops-as-3.11": (["-DCLAIM_VERSION=0x030b02f0"], PythonRuntime),
    "loops-as-3.12": (["-DCLAIM_VERSION=0x030c01f0"], PythonRuntime),
    "long-chain-as-3.11": (["-DCLAIM_VERSION=0x030b02f0", "-DLONG_CHAIN"], PythonRuntime),
    "garbage-debug-offsets-3.13": (["-DDEBUG_COOKIE_VERSION=0x030d00f0"], UnsupportedPython),
    "debug-offsets-3.14": (["-DDEBUG_COOKIE_VERSION=0x030e00f0"], UnsupportedPython),
    "claims-python-2": (["-DCLAIM_VERSION=0x020712f0"], UnsupportedPython),
    "symbol-without-version": ([], UnsupportedPython),
    "stripped-section-only": (["-DHIDDEN", "-s"], UnsupportedPython),
}


_COMPILED: dict[tuple[str, ...], Path] = {}


def compiled(flags: list[str], directory: Path) -> Path:
    """One build per set of flags for the whole session (each `cc` run costs ~0.3 s)."""
    key = tuple(flags)
    if key not in _COMPILED:
        binary = directory / f"hostile_{len(_COMPILED)}"
        command = ["cc", "-O1", "-rdynamic", *flags, "-o", str(binary), str(SOURCE)]
        subprocess.run(command, check=True)
        _COMPILED[key] = binary
    return _COMPILED[key]


@pytest.fixture(scope="session")
def build_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@contextmanager
def hostile_process(directory: Path, flags: list[str]) -> Iterator[subprocess.Popen[str]]:
    binary = compiled(flags, directory)
    process = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("variant", VARIANTS)
def test_fake_runtime_is_detected_and_walked_cleanly(variant: str, build_directory: Path) -> None:
    flags, expected = VARIANTS[variant]
    with hostile_process(build_directory, flags) as process:
        tracemalloc.start()
        started = time.perf_counter()
        result = detect_python(process.pid)
        stacks = (
            walk_process(process.pid, result, CodeReader())
            if isinstance(result, PythonRuntime)
            else ()
        )
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert tracer_pid(process.pid) == 0
        assert process.poll() is None

    assert isinstance(result, expected), result
    assert elapsed < TIME_LIMIT_SECONDS
    assert peak < ALLOCATION_LIMIT_BYTES
    for stack in stacks:
        assert len(stack.frames) <= MAX_FRAMES
        assert all(len(frame.qualname) <= 1025 for frame in stack.frames)


def test_self_pointing_thread_list_and_frame_chain_end_at_the_loop(build_directory: Path) -> None:
    with hostile_process(build_directory, ["-DCLAIM_VERSION=0x030b02f0"]) as process:
        runtime = detect_python(process.pid)
        assert isinstance(runtime, PythonRuntime)
        with ProcessMemory(process.pid) as memory:
            threads = thread_states(memory, runtime)
            frames, truncated, error = raw_frames(
                memory, runtime, current_frame(memory, runtime, threads[0].address)
            )
    assert [t.native_thread_id for t in threads] == [process.pid]
    assert len(frames) == 1 and not truncated
    assert error is not None and "loops" in error


def test_an_endless_distinct_chain_is_cut_at_the_frame_limit(build_directory: Path) -> None:
    with hostile_process(
        build_directory, ["-DCLAIM_VERSION=0x030b02f0", "-DLONG_CHAIN"]
    ) as process:
        runtime = detect_python(process.pid)
        assert isinstance(runtime, PythonRuntime)
        with ProcessMemory(process.pid) as memory:
            (thread,) = thread_states(memory, runtime)
            frames, truncated, error = raw_frames(
                memory, runtime, current_frame(memory, runtime, thread.address)
            )
    assert (len(frames), truncated, error) == (MAX_FRAMES, True, None)


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("garbage-debug-offsets-3.13", "CPython 3.13: _Py_DebugOffsets."),
        ("debug-offsets-3.14", "CPython 3.14: interpreter frames not supported"),
        ("claims-python-2", "is not CPython 3"),
        ("stripped-section-only", "CPython version unknown"),
    ],
)
def test_unsupported_fakes_say_why(variant: str, reason: str, build_directory: Path) -> None:
    with hostile_process(build_directory, VARIANTS[variant][0]) as process:
        result = detect_python(process.pid)
    assert isinstance(result, UnsupportedPython), result
    assert reason in result.reason


def test_stripped_fake_is_found_through_its_section(tmp_path: Path) -> None:
    """`-s` leaves no symbol at all: only the `.PyRuntime` section can have found it, and with
    a version claimed in the file name the section alone is enough for detection."""
    named = tmp_path / "named"
    named.mkdir()
    binary = named / "python3.11"
    subprocess.run(["cc", "-O1", "-DHIDDEN", "-s", "-o", str(binary), str(SOURCE)], check=True)
    process = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        result = detect_python(process.pid)
    finally:
        process.kill()
        process.wait()
    assert isinstance(result, PythonRuntime), result
    assert (result.runtime_found_by, result.version_found_by) == ("section", "file name")
