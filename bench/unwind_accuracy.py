"""Whole native stacks without frame pointers: perftop's user stacks against `perf record
--call-graph dwarf` on the same processes over the same seconds, `--unwind table` and `--unwind fp`.

Two workloads run side by side: tests/bpf/test_unwind.py's 8-deep chain built -O2
-fomit-frame-pointer, and Debian's /usr/bin/python3.11 (no frame pointers) running
bench/python_work.py, a pure-Python loop. For each unwinder, perftop starts with `--batch -p
WORKLOADS -F 499 --record FILE`; it registers a process's unwind tables in a background thread
after it first sees it, so once its second interval is written `perf record --call-graph dwarf
-F 499 -p WORKLOADS` starts for the next SECONDS, and perftop's next SECONDS intervals are
compared with what perf recorded (`perf script --no-inline`, which unwinds the copied stacks
with the binaries' .eh_frame: the oracle).

Per workload and unwinder: (a) the share of samples whose user stack reaches `main`
(python3.11: `main` or `Py_BytesMain`; Debian strips main's name), counting native frames only;
(b) the median user stack depth in native frames, from `_start` up to and including the
outermost `_PyEval_EvalFrame*` (perftop: its first Python frame, which stands there), or the
whole stack when there is none (bench/native_stacks.py says why this compares like with like).
Kernel frames and frames at unmapped addresses (perftop's `[broken unwind]`, perf's `[unknown]`
module) are not counted. Target, `--unwind table` only: perftop's median within 1 frame of perf's.
`--unwind fp` is the before-picture, reported and not judged. Each case prints the depth
histograms and the hottest stack of each profiler, so a difference can be read off.

Run: `.venv/bin/python bench/unwind_accuracy.py [--seconds 10]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    BENCH,
    PERFTOP,
    ROOT,
    Figure,
    Group,
    add_json_argument,
    exit_cleanly_on_signals,
    report_figures,
)
from native_stacks import (
    NativeStack,
    build_chain,
    depth_histogram,
    hottest,
    main_share,
    median_depth,
    recorded_stacks,
    sample_count,
)

FREQUENCY = 499
WARM_INTERVALS = 2  # perftop's first intervals, while it registers the workloads' tables
MODES = ("table", "fp")
PYTHON = Path("/usr/bin/python3.11")
PERF = "perf record --call-graph dwarf"
TARGET_FRAMES = 1.0
PERF_FRAME = re.compile(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


@dataclass(frozen=True, slots=True)
class Workload:
    label: str
    pid: int


@dataclass(frozen=True, slots=True)
class Session:
    """One unwinder's run: perftop's stacks and perf's of the same seconds."""

    mode: str
    perftop: list[NativeStack]
    perf: list[NativeStack]
    perftop_seconds: float
    perf_seconds: float
    incomplete_walks: int  # perftop's unwind_incomplete counter over the measured intervals


def perf_stacks(data: Path, pids: set[int]) -> list[NativeStack]:
    """Every sample of `pids` in perf.data as a NativeStack (one per sample)."""
    script = subprocess.run(
        ["perf", "script", "-i", str(data), "--no-inline", "-F", "pid,ip,sym,dso"],
        capture_output=True,
        text=True,
        errors="replace",
        check=True,
    ).stdout
    stacks = []
    for block in script.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        header = lines[0].split()
        if not header or not header[0].isdigit() or int(header[0]) not in pids:
            continue
        names = []
        for line in lines[1:]:
            match = PERF_FRAME.match(line)
            if match is None:
                continue
            symbol, module = match.group(2), match.group(3)
            if module.startswith("[kernel") or module == "[unknown]":
                continue
            names.append(re.sub(r"\+0x[0-9a-f]+$", "", symbol))
        stacks.append(NativeStack(int(header[0]), tuple(reversed(names)), 1))
    return stacks


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) >= count:
            return
        if process.poll() is not None:
            raise RuntimeError(f"perftop exited ({process.returncode}) before its intervals")
        time.sleep(0.02)
    raise RuntimeError(f"perftop wrote fewer than {count} intervals in {limit:.0f} s")


def session(mode: str, pids: set[int], seconds: int, workdir: Path, group: Group) -> Session:
    recording = workdir / f"perftop-{mode}.jsonl"
    data = workdir / f"perf-{mode}.data"
    pid_list = ",".join(str(pid) for pid in sorted(pids))
    intervals = WARM_INTERVALS + seconds + 1  # one more than read: perf's end falls inside it
    perftop = group.start(
        [
            *PERFTOP,
            "--batch",
            "--format",
            "json",
            "-d",
            "1",
            "-n",
            str(intervals),
            "-F",
            str(FREQUENCY),
            "-p",
            pid_list,
            "--unwind",
            mode,
            "--record",
            str(recording),
        ],
        cwd=ROOT,
    )
    wait_for_lines(recording, WARM_INTERVALS, perftop, limit=120.0)
    perf = group.start(
        [
            "perf",
            "record",
            "-q",
            "--call-graph",
            "dwarf",
            "-F",
            str(FREQUENCY),
            "-p",
            pid_list,
            "--no-buildid-cache",
            "-o",
            str(data),
            "--",
            "sleep",
            str(seconds),
        ]
    )
    perf_started = time.monotonic()
    perf.wait(seconds + 60)
    perf_seconds = time.monotonic() - perf_started
    group.stop(perf)
    perftop.wait(seconds + 60)
    group.stop(perftop)
    lines = [json.loads(text) for text in recording.read_text().splitlines()]
    lines = [line for line in lines if not line.get("preview")]
    measured = lines[WARM_INTERVALS : WARM_INTERVALS + seconds]
    return Session(
        mode,
        recorded_stacks(measured, pids),
        perf_stacks(data, pids),
        sum(line["interval_s"] for line in measured),
        perf_seconds,
        sum(line["lost"].get("unwind_incomplete", 0) for line in measured),
    )


def describe(workload: Workload, run: Session) -> None:
    ours = [stack for stack in run.perftop if stack.pid == workload.pid]
    theirs = [stack for stack in run.perf if stack.pid == workload.pid]
    print(f"{workload.label}, --unwind {run.mode}")
    for name, stacks in (("perftop", ours), ("perf", theirs)):
        print(
            f"  {name:<8} {sample_count(stacks):>6} samples, {main_share(stacks):6.1f}% reach "
            f"main, median depth {median_depth(stacks):.1f}; depth: samples "
            f"{depth_histogram(stacks)}"
        )
    for name, stacks in (("perftop", ours), ("perf", theirs)):
        top = hottest(stacks)
        if top is not None:
            print(f"  hottest {name} ({top.samples} samples, depth {top.depth}): {top.line()}")
    # Where the medians differ, a stack at each profiler's median depth.
    ours_median, theirs_median = median_depth(ours), median_depth(theirs)
    if abs(ours_median - theirs_median) > TARGET_FRAMES:
        for name, stacks, depth in (
            ("perftop", ours, ours_median),
            ("perf", theirs, theirs_median),
        ):
            typical = hottest(stacks, round(depth))
            if typical is not None:
                print(f"  at {name}'s median ({typical.samples} samples): {typical.line(40)}")


def figures_of(workload: Workload, run: Session) -> list[Figure]:
    ours = [stack for stack in run.perftop if stack.pid == workload.pid]
    theirs = [stack for stack in run.perf if stack.pid == workload.pid]
    setting = (
        f"{FREQUENCY} Hz, -p both workloads, perftop {run.perftop_seconds:.1f} s "
        f"({sample_count(ours)} samples), perf {run.perf_seconds:.1f} s "
        f"({sample_count(theirs)} samples), the same seconds after perftop's first "
        f"{WARM_INTERVALS} intervals"
    )
    ours_median, theirs_median = median_depth(ours), median_depth(theirs)
    judged = run.mode == "table"
    before = "" if judged else "; frame pointers: the before-picture"
    return [
        Figure(
            f"user stacks reaching main, {workload.label}, --unwind {run.mode}",
            "% of samples",
            main_share(ours),
            peer_name=PERF,
            peer=main_share(theirs),
            note=f"{setting}{before}",
        ),
        Figure(
            f"median native user stack depth, {workload.label}, --unwind {run.mode}",
            "frames",
            ours_median,
            peer_name=PERF,
            peer=theirs_median,
            target=f"within {TARGET_FRAMES:.0f} of perf's" if judged else "",
            met=abs(ours_median - theirs_median) <= TARGET_FRAMES if judged else None,
            note=f"{setting}; frames from _start to the outermost eval frame (all of them "
            f"without one); perftop's unwind_incomplete {run.incomplete_walks}{before}",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured per unwinder")
    add_json_argument(parser)
    args = parser.parse_args()
    exit_cleanly_on_signals()
    if not PYTHON.exists():
        print(f"{PYTHON} is not installed")
        return 1
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp, Group() as group:
        workdir = Path(tmp)
        chain = build_chain(workdir)
        lifetime = str(args.seconds * 10 + 300)
        workloads = [
            Workload("chain -O2 -fomit-frame-pointer", group.start([str(chain), lifetime]).pid),
            Workload(
                "Debian python3.11",
                group.start([str(PYTHON), str(BENCH / "python_work.py"), lifetime]).pid,
            ),
        ]
        pids = {workload.pid for workload in workloads}
        time.sleep(0.5)
        for mode in MODES:
            run = session(mode, pids, args.seconds, workdir, group)
            for workload in workloads:
                describe(workload, run)
                figures += figures_of(workload, run)
            print(flush=True)
    print(f"native user stacks against {PERF}: {FREQUENCY} Hz, {args.seconds} s per unwinder")
    return report_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
