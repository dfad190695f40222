"""Python frames through the real sampler: the BPF program walks each interpreter's frames in
the kernel, user space names them and merges them into the native stack, as `perftop` shows.

Every interpreter on the machine runs a real workload; nothing here is mocked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from perftop.config import SamplerConfig
from perftop.model.reasons import Unresolved
from perftop.model.samples import FrameKind, Interval, StackSample
from perftop.profile.view import build_view
from tests.python.conftest import (
    DEBIAN_PYTHON,
    INTERPRETERS,
    interpreter_path,
    pyenv_python,
    run_child,
    tracer_pid,
)
from tests.python.test_python_hostile import compiled

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

CHAIN = ["<module>", "outer", "middle", "inner_spin"]

SPIN = """
    import sys
    def inner_spin(n):
        total = 0
        for i in range(n):
            total += i * i
        return total

    def middle():
        return inner_spin(100000)

    def outer():
        return middle()

    print("ready", flush=True)
    while True:
        outer()
"""


@pytest.fixture(scope="module")
def source() -> Iterator[object]:
    from perftop.sampling.bcc.source import BccSource

    sampler = BccSource(SamplerConfig(interval_s=1.0, frequency_hz=499, pids=(os.getpid(),)))
    yield sampler
    sampler.close()


def sample(source: object, pid: int, intervals: int = 1) -> list[StackSample]:
    """The stacks of `pid` over `intervals` whole intervals, after one that applies the filter
    and lets perftop register the process (it is classified when first sampled)."""
    source.set_pid_filter([pid])  # type: ignore[attr-defined]
    source.next_interval()  # type: ignore[attr-defined]
    stacks: list[StackSample] = []
    for _ in range(intervals):
        interval = source.next_interval()  # type: ignore[attr-defined]
        assert isinstance(interval, Interval)
        stacks += [stack for stack in interval.stacks if stack.pid == pid]
    assert stacks, f"no samples of {pid}"
    return stacks


def python_names(stack: StackSample) -> list[str]:
    return [f.python.qualname for f in stack.frames if f.python is not None]


def self_shares(stacks: list[StackSample]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for stack in stacks:
        if stack.frames:
            counts[stack.frames[-1].symbol] += stack.samples
    return counts


@pytest.mark.parametrize("name", INTERPRETERS)
def test_chain_under_module_and_inner_spin_hottest(
    source: object, name: str, tmp_path: Path
) -> None:
    with run_child(interpreter_path(name), SPIN, tmp_path) as child:
        assert child.read_line() == "ready"
        stacks = sample(source, child.pid)
        assert tracer_pid(child.pid) == 0  # read from outside, never stopped or traced
    total = sum(stack.samples for stack in stacks)
    chained = sum(s.samples for s in stacks if python_names(s) == CHAIN)
    # Nearly every sample is in inner_spin under the chain; the rest in outer/middle's own
    # bytecode between calls.
    assert chained / total > 0.8, [(python_names(s), s.samples) for s in stacks][:10]
    leaf = self_shares(stacks).most_common(1)[0][0]
    assert leaf == "inner_spin (child_program.py:3)"
    # Native callers (walked with unwind tables) then the Python frames, no broken walk.
    deep = max((s for s in stacks if python_names(s) == CHAIN), key=lambda s: s.samples)
    first_python = next(i for i, f in enumerate(deep.frames) if f.python is not None)
    assert deep.frames[first_python].symbol.startswith("<module> (child_program.py:")
    assert all(f.kind is FrameKind.NATIVE for f in deep.frames[:first_python])
    assert not any(f.symbol in ("[broken unwind]", "[unwind stopped]") for f in deep.frames)
    assert not any(f.symbol.startswith("_PyEval_EvalFrame") for f in deep.frames)
    frame = [f for f in deep.frames if f.python is not None][-1]  # the innermost Python frame
    assert frame.kind is FrameKind.PYTHON and frame.python is not None
    assert frame.module == str(tmp_path / "child_program.py")
    assert frame.python.line in (4, 5, 6, 7)  # a line of inner_spin's body


@pytest.mark.parametrize("name", INTERPRETERS)
def test_folded_output_of_the_cli_has_the_chain(name: str, tmp_path: Path) -> None:
    with run_child(interpreter_path(name), SPIN, tmp_path) as child:
        assert child.read_line() == "ready"
        command = [sys.executable, "-m", "perftop", "--batch", "-n", "2", "-d", "1"]
        command += ["-F", "199", "-p", str(child.pid), "--format", "folded"]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    chain = ";".join(
        f"{function} (child_program.py:{line})"
        for function, line in zip(CHAIN, (1, 12, 9, 3), strict=True)
    )
    lines = completed.stdout.splitlines()
    # comm;native callers;<module> (...);outer (...);middle (...);inner_spin (...) COUNT
    assert any(f";{chain} " in line for line in lines), completed.stdout[:2000]


def test_no_python_shows_the_interpreter_frames(tmp_path: Path) -> None:
    from perftop.sampling.bcc.source import BccSource

    with run_child(DEBIAN_PYTHON, SPIN, tmp_path) as child:
        assert child.read_line() == "ready"
        sampler = BccSource(SamplerConfig(frequency_hz=199, pids=(child.pid,), python_frames=False))
        try:
            interval = sampler.next_interval()
        finally:
            sampler.close()
    assert interval is not None and not interval.python_frames
    stacks = [s for s in interval.stacks if s.pid == child.pid]
    assert stacks and not any(python_names(s) for s in stacks)
    assert "_PyEval_EvalFrameDefault" in {f.symbol for s in stacks for f in s.frames}


THREADS = """
    import threading

    def spin_in_a(n):
        total = 0
        for i in range(n):
            total += i
        return total

    def spin_in_b(n):
        total = 0
        for i in range(n):
            total -= i
        return total

    tids = {}
    started = threading.Barrier(3)

    def run_a():
        tids["a"] = threading.get_native_id()
        started.wait()
        while True:
            spin_in_a(10000)

    def run_b():
        tids["b"] = threading.get_native_id()
        started.wait()
        while True:
            spin_in_b(10000)

    for target in (run_a, run_b):
        threading.Thread(target=target, daemon=True).start()
    started.wait()
    print(tids["a"], tids["b"], flush=True)  # one line: Child.read_line selects on the pipe
    threading.Event().wait()
"""


@pytest.mark.parametrize("name", ["debian-3.11", "pyenv-3.13.0"])
def test_each_thread_has_its_own_python_stack(source: object, name: str, tmp_path: Path) -> None:
    with run_child(interpreter_path(name), THREADS, tmp_path) as child:
        tids = dict(zip("ab", child.read_line().split(), strict=True))
        stacks = sample(source, child.pid)
    by_thread: dict[int, Counter[str]] = {}
    for stack in stacks:
        names = python_names(stack)
        if names:
            by_thread.setdefault(stack.tid, Counter())[names[-1]] += stack.samples
    a, b = by_thread[int(tids["a"])], by_thread[int(tids["b"])]
    # Only one thread holds the GIL at a time, yet each thread's samples carry its own frames.
    assert a["spin_in_a"] > 0 and "spin_in_b" not in a and "run_b" not in a, a
    assert b["spin_in_b"] > 0 and "spin_in_a" not in b and "run_a" not in b, b
    for stack in stacks:
        names = python_names(stack)
        if stack.tid == int(tids["a"]) and names:
            assert names[:2] == ["Thread._bootstrap", "Thread._bootstrap_inner"] or names[0] in (
                "run_a",
                "Thread.run",
            ), names


def remembered_thread_state(source: object, pid: int, tid: int) -> tuple[int, int] | None:
    """(tstate, missed_ns) the program remembers for thread `tid` of `pid`, or None."""
    threads = source._program.maps.python_threads  # type: ignore[attr-defined]
    for key, value in list(threads.items()):
        if key.value == (pid << 32) | tid:
            return value.tstate, value.missed_ns
    return None


def remember_thread_state(source: object, pid: int, tid: int, tstate: int, missed: int) -> None:
    threads = source._program.maps.python_threads  # type: ignore[attr-defined]
    threads[threads.Key((pid << 32) | tid)] = threads.Leaf(tstate, missed)


def test_a_thread_state_found_once_is_read_at_once_and_checked(
    source: object, tmp_path: Path
) -> None:
    """The program remembers each thread's PyThreadState; a remembered one that is no longer the
    thread's (here: the other thread's) or a recent "none found" is searched again."""
    with run_child(DEBIAN_PYTHON, THREADS, tmp_path) as child:
        a, b = (int(tid) for tid in child.read_line().split())
        sample(source, child.pid)
        found_a = remembered_thread_state(source, child.pid, a)
        found_b = remembered_thread_state(source, child.pid, b)
        assert found_a is not None and found_a[0], found_a
        assert found_b is not None and found_b[0] and found_b[0] != found_a[0], found_b
        # Given thread a's hint pointing at b's tstate, and b's saying "searched just now, none":
        remember_thread_state(source, child.pid, a, found_b[0], 0)
        remember_thread_state(source, child.pid, b, 0, time.monotonic_ns())
        interval = source.next_interval()  # type: ignore[attr-defined]
        assert isinstance(interval, Interval)
        stacks = [stack for stack in interval.stacks if stack.pid == child.pid]
        after_a = remembered_thread_state(source, child.pid, a)
        after_b = remembered_thread_state(source, child.pid, b)
    leaves: dict[int, Counter[str]] = {a: Counter(), b: Counter()}
    for stack in stacks:
        names = python_names(stack)
        if names and stack.tid in leaves:
            leaves[stack.tid][names[-1]] += stack.samples
    # Then a's samples still carry a's frames, never b's, b's frames come back after the retry
    # wait, and both hints are right again.
    assert leaves[a]["spin_in_a"] > 0 and "spin_in_b" not in leaves[a], leaves[a]
    assert leaves[b]["spin_in_b"] > 0 and "spin_in_a" not in leaves[b], leaves[b]
    assert after_a is not None and after_a[0] == found_a[0]
    assert after_b is not None and after_b[0] == found_b[0]


# THREADS, and a dead thread state's look-alike: zeros with thread a's id where 3.11 keeps
# native_thread_id (offset 160), as a freed PyThreadState still holds it (free() leaves most of
# a block as it was). Its frame pointer is NULL: no frames.
FREED_STATE = THREADS.replace(
    'print(tids["a"], tids["b"], flush=True)',
    """import ctypes
    freed = ctypes.create_string_buffer(512)
    ctypes.memmove(ctypes.addressof(freed) + 160, tids["a"].to_bytes(8, "little"), 8)
    print(tids["a"], tids["b"], ctypes.addressof(freed), flush=True)""",
)


def test_a_remembered_thread_state_without_frames_is_searched_again(
    source: object, tmp_path: Path
) -> None:
    """A remembered tstate that still carries the thread's id but yields no frames (a freed
    one) is forgotten, so the thread's own state is found again, not lost for good."""
    with run_child(DEBIAN_PYTHON, FREED_STATE, tmp_path) as child:
        a, _b, freed = (int(word) for word in child.read_line().split())
        sample(source, child.pid)
        found_a = remembered_thread_state(source, child.pid, a)
        assert found_a is not None and found_a[0] and found_a[0] != freed, found_a
        remember_thread_state(source, child.pid, a, freed, 0)
        interval = source.next_interval()  # type: ignore[attr-defined]
        assert isinstance(interval, Interval)
        after_a = remembered_thread_state(source, child.pid, a)
    named = Counter(
        python_names(stack)[-1]
        for stack in interval.stacks
        if stack.pid == child.pid and stack.tid == a and python_names(stack)
    )
    assert named["spin_in_a"] > 0, named
    assert after_a is not None and after_a[0] == found_a[0], (after_a, found_a, freed)


CHURN = """
    import threading, time

    def spin_even(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    def spin_odd(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    def run(kind, log):
        with open(log, "a") as out:
            out.write(f"{threading.get_native_id()} {kind}\\n")
        (spin_even if kind == "even" else spin_odd)(0.15)

    log = __file__ + ".tids"
    print("ready", flush=True)
    i = 0
    while True:  # one thread at a time: each new one's tstate may take the last one's memory
        thread = threading.Thread(target=run, args=("even" if i % 2 == 0 else "odd", log))
        thread.start()
        thread.join()
        i += 1
"""


def test_threads_that_come_and_go_each_get_their_own_stack(source: object, tmp_path: Path) -> None:
    with run_child(DEBIAN_PYTHON, CHURN, tmp_path) as child:
        assert child.read_line() == "ready"
        stacks = sample(source, child.pid, intervals=2)
        kinds = dict(line.split() for line in Path(f"{child.script}.tids").read_text().splitlines())
        remembered = {tid: remembered_thread_state(source, child.pid, int(tid)) for tid in kinds}
    leaves: dict[int, set[str]] = {}
    for stack in stacks:
        names = python_names(stack)
        if names and str(stack.tid) in kinds and names[-1].startswith("spin_"):
            leaves.setdefault(stack.tid, set()).add(names[-1])
    assert len(leaves) >= 5, leaves  # ~13 threads a 2 s: most of them sampled with frames
    for tid, names in leaves.items():
        assert names == {f"spin_{kinds[str(tid)]}"}, (tid, names)
    # The sampled threads' states were remembered (but for a thread caught as it ended, with no
    # frames left: that forgets its state), and the new threads' states took the freed memory
    # of the old ones': a remembered address was another thread's before.
    tstates = [found[0] for found in (remembered[str(tid)] for tid in leaves) if found and found[0]]
    assert len(tstates) >= len(leaves) // 2, remembered
    assert len(set(tstates)) < len(tstates), tstates


EXTENSION = """
    import zlib, os
    data = os.urandom(1 << 20)

    def compress_loop():
        for _ in range(10):
            zlib.compress(data, 9)

    print("ready", flush=True)
    while True:
        compress_loop()
"""


def test_a_c_extension_leaf_sits_under_its_python_caller(source: object, tmp_path: Path) -> None:
    with run_child(DEBIAN_PYTHON, EXTENSION, tmp_path) as child:
        assert child.read_line() == "ready"
        stacks = sample(source, child.pid)
    total = sum(s.samples for s in stacks)
    under = 0
    for stack in stacks:
        symbols = [f.symbol for f in stack.frames]
        caller = "compress_loop (child_program.py:5)"
        if caller in symbols:
            after = stack.frames[symbols.index(caller) + 1 :]
            if after and after[0].module.startswith("libz.so"):
                under += stack.samples
    # zlib's deflate is nearly all of the work: its frames hang right under compress_loop.
    assert under / total > 0.5, [[f.symbol for f in s.frames] for s in stacks[:8]]


EXITING = """
    import time
    def about_to_exit():
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass
    print("ready", flush=True)
    about_to_exit()
"""


def test_a_process_that_exits_mid_interval_leaves_nothing(source: object, tmp_path: Path) -> None:
    frames = source._python_frames  # type: ignore[attr-defined]
    with run_child(DEBIAN_PYTHON, EXITING, tmp_path) as child:
        assert child.read_line() == "ready"
        pid = child.pid
        stacks = sample(source, pid, intervals=2)  # it exits half-way through the second
        child.process.wait(timeout=5)
    names = {name for stack in stacks for name in python_names(stack)}
    assert names <= {"<module>", "about_to_exit"}, names
    assert "about_to_exit" in names, [([f.symbol for f in s.frames], s.samples) for s in stacks]
    unknown = [f for s in stacks for f in s.frames if f.unresolved_reason is not None]
    assert all(
        f.unresolved_reason is Unresolved.PYTHON_CODE_GONE
        for f in unknown
        if f.module == "[python]"
    )
    source.next_interval()  # type: ignore[attr-defined]  # the drain after the exit forgets it
    assert pid not in frames.walked
    maps = source._program.maps  # type: ignore[attr-defined]
    assert not any(key.value == pid for key in list(maps.python_procs))
    assert not any(
        os.readlink(f"/proc/self/fd/{fd}") == f"/proc/{pid}/mem"
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


FREED = """
    import time
    print("ready", flush=True)
    i = 0
    while True:
        # A new code object each time, freed when the next replaces it; its first line is
        # its number (1 + i blank lines), so a name and its line always agree.
        namespace = {}
        source = "\\n" * i + f"def made_{i}():\\n    end = time.monotonic() + 0.02\\n" + \\
            "    while time.monotonic() < end:\\n        pass\\n"
        exec(compile(source, "generated.py", "exec"), {"time": time}, namespace)
        namespace[f"made_{i}"]()
        i = (i + 1) % 500
"""


def test_freed_code_objects_get_no_stale_name(source: object, tmp_path: Path) -> None:
    with run_child(DEBIAN_PYTHON, FREED, tmp_path) as child:
        assert child.read_line() == "ready"
        stacks = sample(source, child.pid, intervals=2)
    seen = 0
    for stack in stacks:
        for frame in stack.frames:
            if frame.python is None or frame.python.filename != "generated.py":
                continue
            if frame.python.qualname == "<module>":  # the exec of the definition
                continue
            match = re.fullmatch(r"made_(\d+)", frame.python.qualname)
            assert match, frame
            assert frame.python.first_line == int(match.group(1)) + 1, frame
            seen += stack.samples
    assert seen > 0


HOSTILE_NAMES = """
    def spin():
        total = 0
        for i in range(100000):
            total += i
    code = spin.__code__
    spin.__code__ = code.replace(co_name="\\x1b[31mred", co_qualname="\\x1b[2J[bold]x[/bold];y")
    print("ready", flush=True)
    while True:
        spin()
"""


def test_hostile_names_are_kept_literally_and_printed_safely(tmp_path: Path) -> None:
    with run_child(DEBIAN_PYTHON, HOSTILE_NAMES, tmp_path) as child:
        assert child.read_line() == "ready"
        command = [sys.executable, "-m", "perftop", "--batch", "-n", "2", "-d", "1"]
        command += ["-F", "199", "-p", str(child.pid)]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "\x1b" not in completed.stdout
    assert "\\x1b[2J[bold]x[/bold];y (child_program.py:2)" in completed.stdout, completed.stdout


def test_a_fake_runtime_with_garbage_pointers_is_survived(source: object, tmp_path: Path) -> None:
    binary = compiled(["-DCLAIM_VERSION=0x030b02f0", "-DSPIN"], tmp_path)
    process = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        stacks = sample(source, process.pid, intervals=2)
        assert process.poll() is None and tracer_pid(process.pid) == 0
    finally:
        process.kill()
        process.wait()
    assert sum(s.samples for s in stacks) > 100
    view = build_view(source.next_interval())  # type: ignore[attr-defined]
    assert view is not None  # the sampler goes on


def test_an_unsupported_version_says_so_in_the_stack(source: object, tmp_path: Path) -> None:
    python = pyenv_python("3.10.13")
    if not python.exists():
        if os.environ.get("PERFTOP_REQUIRE_BPF") == "1":
            pytest.fail(f"{python} not installed (PERFTOP_REQUIRE_BPF=1: CI must test it)")
        pytest.skip(f"{python} not installed")
    with run_child(python, SPIN, tmp_path) as child:
        assert child.read_line() == "ready"
        stacks = sample(source, child.pid)
    explained = [
        f for s in stacks for f in s.frames if f.unresolved_reason is Unresolved.PYTHON_UNSUPPORTED
    ]
    assert explained, [[f.symbol for f in s.frames] for s in stacks[:5]]
    assert explained[0].symbol == "[CPython 3.10: interpreter frames not supported]"
