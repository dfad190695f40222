"""Write tests/data/synthetic.jsonl: a small, fixed session for the UI tests.

Run it again after changing the recording format:
    .venv/bin/python tests/data/make_synthetic_recording.py

It holds what a real session rarely shows at once: a process whose name is markup plus a
terminal escape, a symbol that tries the same, a stripped library, a JIT without a perf map,
a kernel thread, a process that exits, and lost samples. Nothing random: the same file each run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from perftop.formats.recording import RecordingWriter
from perftop.model.reasons import Unresolved
from perftop.model.samples import (
    KERNEL_MODULE,
    CpuStat,
    Frame,
    Interval,
    ProcessInfo,
    SamplerCost,
    StackSample,
)

OUTPUT = Path(__file__).with_name("synthetic.jsonl")
HOSTILE_COMM = "[bold red]x[/]\x1b]0;owned\x07"
HOSTILE_SYMBOL = "evil[/]\x1b[31m"


def user(symbol: str, module: str, reason: Unresolved | None = None) -> Frame:
    return Frame(symbol, module, kernel=False, unresolved_reason=reason)


def kernel(symbol: str) -> Frame:
    return Frame(symbol, KERNEL_MODULE, kernel=True)


SYSCALL = (kernel("entry_SYSCALL_64_after_hwframe"), kernel("do_syscall_64"))
READ = (*SYSCALL, kernel("ksys_read"), kernel("vfs_read"))
WRITE = (*SYSCALL, kernel("ksys_write"), kernel("vfs_write"), kernel("tcp_sendmsg"))

PYTHON_MAIN = (user("_start", "python3.12"), user("Py_RunMain", "python3.12"))
PYTHON_EVAL = (*PYTHON_MAIN, user("_PyEval_EvalFrameDefault", "python3.12"))
PYTHON_JIT = user("[unknown]", "[anon:jit]", Unresolved.JIT)
POSTGRES = (user("main", "postgres"), user("PostmasterMain", "postgres"))
APP = (user("main", "app"), user("run_jobs", "app"))
STRIPPED = user("libfoo.so+0x1a2b", "libfoo.so", Unresolved.STRIPPED)
KWORKER = (kernel("ret_from_fork"), kernel("kthread"), kernel("worker_thread"))

INFOS = {
    1001: ProcessInfo(1001, "alice", "python3 -m http.server 8000", 4, 38.5, 48_234_496),
    2002: ProcessInfo(2002, "postgres", "postgres: checkpointer", 1, 21.0, 152_043_520),
    3003: ProcessInfo(3003, "mallory", f"/tmp/{HOSTILE_COMM} --evil", 2, 12.5, 8_388_608),
    4004: ProcessInfo(4004, "bob", "./app --jobs 4", 5, 9.5, 310_378_496),
    5005: ProcessInfo(5005, "root", "", 1, 1.0, 0, kernel_thread=True),
    6006: ProcessInfo(6006, "carol", "gcc -O2 -c big.c", 1, 30.0, 201_326_592),
}


def stacks(interval: int) -> list[StackSample]:
    """The samples of one interval; `interval` nudges the counts so the intervals differ."""
    grow = interval * 3
    found = [
        StackSample(1001, 1001, "python3", (*PYTHON_EVAL, PYTHON_JIT), 120 + grow, 0),
        StackSample(
            1001, 1001, "python3", (*PYTHON_EVAL, user("PyObject_Malloc", "python3.12")), 40, 0
        ),
        StackSample(
            1001, 1002, "python3", (*PYTHON_MAIN, user("__libc_recv", "libc.so.6"), *READ), 25, 0
        ),
        StackSample(
            2002, 2002, "postgres", (*POSTGRES, user("BufferSync", "postgres")), 70 - grow, 0
        ),
        StackSample(
            2002, 2002, "postgres", (*POSTGRES, user("__libc_write", "libc.so.6"), *WRITE), 30, 0
        ),
        StackSample(
            3003,
            3003,
            HOSTILE_COMM,
            (user("main", "evil"), user(HOSTILE_SYMBOL, "libevil.so")),
            45,
            0,
        ),
        StackSample(4004, 4004, "app", (*APP, STRIPPED), 35 + interval, 0),
        StackSample(4004, 4005, "app", (*APP, user("memcpy", "libc.so.6")), 12, 0),
        StackSample(5005, 5005, "kworker/0:1", (*KWORKER, kernel("process_one_work")), 8, 0),
    ]
    # gcc exits during the last interval: a few samples, then psutil finds it gone.
    cc1 = (user("main", "cc1"), user("ggc_collect", "cc1"))
    found.append(StackSample(6006, 6006, "cc1", cc1, 90 if interval < 3 else 20, 0))
    # sample_period in ns for cpu-clock at 99 Hz
    return [
        StackSample(s.pid, s.tid, s.comm, s.frames, s.samples, s.samples * 10_101_010)
        for s in found
    ]


def snapshot(interval: int) -> Interval:
    found = stacks(interval)
    samples = sum(stack.samples for stack in found)
    infos = dict(INFOS)
    if interval >= 3:
        infos[6006] = ProcessInfo(6006, exited=True)
    cpus = (
        CpuStat(0, samples // 4 + 40, 59),
        CpuStat(1, samples // 4 + 20, 79),
        CpuStat(2, samples // 4 - 10, 109),
        CpuStat(3, samples - 3 * (samples // 4) - 50, 149),
    )
    return Interval(
        timestamp=1_700_000_000.0 + interval,
        interval_s=1.0,
        event="cpu-clock",
        frequency_hz=99,
        lost={"stack_errors": 3 if interval == 2 else 0, "counts_full": 0},
        cpus=cpus,
        stacks=tuple(found),
        processes=infos,
        stack_mode="both",
        headers="/usr/src/linux-headers-6.8.0-45-generic",
        cost=SamplerCost(
            cpu_percent=0.8,
            bpf_run_ns_per_s=41_000.0,
            bpf_ns_per_sample=410.0,
            counts_map_used=1234 + interval,
            counts_map_size=40960,
            stack_map_used=512,
            stack_map_size=16384,
            drain_ms=2.5,
        ),
    )


def main() -> int:
    OUTPUT.unlink(missing_ok=True)
    with RecordingWriter(OUTPUT) as writer:
        for interval in range(4):
            writer.write(snapshot(interval))
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
