"""BPF program cost: the kernel's run time per sample of perftop's program, against the program
of BCC's classic `tools/profile.py` (a hash of pid, comm and two stack ids; no drain) under the
same load, each alone.

kernel.bpf_stats_enabled is set to 1 for the run and put back on every way out. Both CPUs are
busy with two copies of bench/stackgen.c (1000 distinct chains each, built with frame
pointers); every program samples at 999 Hz on every CPU. perftop runs in batch JSON mode and
reports `cost.bpf_ns_per_sample` and `cost.bpf_run_ns_per_s` (from its program's fdinfo
run_time_ns / run_cnt) each interval; the peer is loaded here with BCC and its fdinfo is read
the same way.

perftop runs three ways: as a user starts it (`--unwind table`, Python frames on: stackgen's
own .eh_frame tables walk its stacks), with frame-pointer stacks (`--unwind fp`: get_stackid
walks them, as profile.py's program does; Python frames still on, and no process on stackgen's
load is a registered Python process, so the Python walk must cost nothing), and with
`--unwind fp --no-python`, which shows whether it does. "FP stacks" in issue 15's target is the
`--unwind fp` run, judged against profile.py: ratio <= 1.0.

A fourth program is the floor: it only asks the kernel for the user stack id of each non-idle
sample (no key, no count), so its run time is the kernel's frame-pointer walk of the user stack
plus the stack map's hash, which any BPF profiler that shows user stacks pays. perftop's cost
above the floor is what perftop's own program adds.

profile.py's program and the floor are attached over every perftop run, so the three programs
sample the same stacks at the same instants, and the peers' run time is read over perftop's own
measured intervals (from its first interval's report to its last). perftop's variants take turns
in `--rounds` rounds, the order reversed every other round (the machine's speed drifts over a
run); the peers are attached before perftop in the even rounds and after it in the odd ones
(which program was attached first moves the figures by a few percent); each ratio is the
median over every run of perftop against the peer in the same run, and the note gives the
range.

Then the user-stack unwinders on workloads without frame pointers, each on both CPUs (two
copies): tests/bpf/test_unwind.py's 8-deep chain built -O2 -fomit-frame-pointer, and Debian's
python3.11 running bench/python_work.py. For each, perftop runs `-p WORKLOAD --no-python` once
with `--unwind table` and once with `--unwind fp` (Python frames off: bench/python_cost.py
measures them; here the native walk alone), and a floor program that walks the user stack with
get_stackid for the same processes (behind the same kind of pid filter) runs alone. A run's
figure is the program's run time over the workload's counted samples (as in python_cost.py: an
upper bound, since the few filtered samples' early returns are charged to them), over the
intervals after perftop's first two (it registers a process's tables in a background thread
after first seeing it). Per frame: ns per sample over the run's median count of native user
frames per sample, as perftop shows them (for fp and the floor: the fp run's frames, up to
where perftop's symbolizer sees the walk leave the mappings). Table memory: the recording's
`unwind_rows_used` x 16 bytes. Table build time: perftop.unwind's build_unwind_info (cold, no
cache) and load_unwind_info from a temporary cache it filled, for python3.11 and libc, in CPU
seconds, the best of three. Reported, not judged (issue 14 sets no target for them).

Run: `.venv/bin/python bench/bpf_cost.py [--seconds 10]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    BENCH,
    PERFTOP,
    ROOT,
    Figure,
    Group,
    add_json_argument,
    bpf_stats_enabled,
    build,
    exit_cleanly_on_signals,
    median,
    number,
    report_figures,
    start_stackgen,
)
from native_stacks import build_chain, median_over_samples, recorded_stacks
from python_cost import python_pids

from perftop.system.headers import locate_headers
from perftop.unwind.cache import build_unwind_info, load_unwind_info
from perftop.unwind.table import ROW_SIZE

FREQUENCY = 999
# perftop's runs on stackgen: (label, extra arguments)
PERFTOP_VARIANTS = (
    ("perftop (table, Python on)", ()),
    ("perftop --unwind fp", ("--unwind", "fp")),
    ("perftop --unwind fp --no-python", ("--unwind", "fp", "--no-python")),
)
# BCC's tools/profile.py program (v0.26), with its defaults: user and kernel stacks, idle
# filtered, 10240 counts, 16384 stacks.
PEER_PROGRAM = r"""
#include <uapi/linux/ptrace.h>
#include <uapi/linux/bpf_perf_event.h>
#include <linux/sched.h>

struct key_t {
    u32 pid;
    u64 kernel_ip;
    int user_stack_id;
    int kernel_stack_id;
    char name[TASK_COMM_LEN];
};
BPF_HASH(counts, struct key_t);
BPF_STACK_TRACE(stack_traces, 16384);

int do_perf_event(struct bpf_perf_event_data *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    u32 pid = id;
    if (pid == 0)
        return 0;
    struct key_t key = {.pid = tgid};
    bpf_get_current_comm(&key.name, sizeof(key.name));
    key.user_stack_id = stack_traces.get_stackid(&ctx->regs, BPF_F_USER_STACK);
    key.kernel_stack_id = stack_traces.get_stackid(&ctx->regs, 0);
    counts.increment(key);
    return 0;
}
"""
# The floor: the user stack walk and nothing else (idle samples return at once, as in both
# programs above).
FLOOR_PROGRAM = r"""
#include <uapi/linux/ptrace.h>
#include <uapi/linux/bpf_perf_event.h>

BPF_STACK_TRACE(stack_traces, 16384);

int do_perf_event(struct bpf_perf_event_data *ctx) {
    if ((u32)bpf_get_current_pid_tgid() == 0)
        return 0;
    stack_traces.get_stackid(&ctx->regs, BPF_F_USER_STACK);
    return 0;
}
"""

# The floor for one workload: its user stacks walked by get_stackid, every other process's
# sample ended at a pid filter, as perftop's -p does; `walked` counts the workload's samples.
FILTERED_FLOOR_PROGRAM = r"""
#include <uapi/linux/ptrace.h>
#include <uapi/linux/bpf_perf_event.h>

BPF_HASH(wanted, u32, u8, 64);
BPF_PERCPU_ARRAY(walked, u64, 1);
BPF_STACK_TRACE(stack_traces, 16384);

int do_perf_event(struct bpf_perf_event_data *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    if ((u32)id == 0 || !wanted.lookup(&tgid))
        return 0;
    stack_traces.get_stackid(&ctx->regs, BPF_F_USER_STACK);
    u32 zero = 0;
    u64 *count = walked.lookup(&zero);
    if (count)
        (*count)++;
    return 0;
}
"""
WARM_INTERVALS = 2  # perftop's first intervals, while it registers the workloads' tables
UNWIND_MODES = ("table", "fp")
PYTHON = Path("/usr/bin/python3.11")
LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def run_stats(prog_fd: int) -> tuple[int, int]:
    fields = dict(
        line.split(":\t", 1)
        for line in Path(f"/proc/self/fdinfo/{prog_fd}").read_text().splitlines()
        if ":\t" in line
    )
    return int(fields["run_time_ns"]), int(fields["run_cnt"])


RunStats = tuple[int, int]  # a program's run_time_ns and run_cnt
Cost = tuple[float, float, int]  # ns per sample, ns per second, processes with Python frames


class AttachedPeers:
    """profile.py's program and the floor, compiled once; attached with attach() and detached
    with detach() (or on leaving the `with`)."""

    def __init__(self) -> None:
        from bcc import BPF

        os.environ.setdefault("BCC_KERNEL_SOURCE", str(locate_headers().path))
        self._programs = {"profile.py": BPF(text=PEER_PROGRAM), "floor": BPF(text=FLOOR_PROGRAM)}
        self._attached = False

    def __enter__(self) -> AttachedPeers:
        return self

    def attach(self) -> None:
        from bcc import PerfSWConfig, PerfType

        for bpf in self._programs.values():
            bpf.attach_perf_event(
                ev_type=PerfType.SOFTWARE,
                ev_config=PerfSWConfig.CPU_CLOCK,
                fn_name="do_perf_event",
                sample_freq=FREQUENCY,
            )
        self._attached = True

    def detach(self) -> None:
        from bcc import PerfSWConfig, PerfType

        if self._attached:
            for bpf in self._programs.values():
                bpf.detach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK)
            self._attached = False

    def __exit__(self, *_: object) -> None:
        self.detach()
        for bpf in self._programs.values():
            bpf.cleanup()

    def stats(self) -> dict[str, RunStats]:
        return {
            label: run_stats(bpf.funcs[b"do_perf_event"].fd)
            for label, bpf in self._programs.items()
        }


def peer_costs(
    before: dict[str, RunStats], after: dict[str, RunStats], elapsed: float
) -> dict[str, tuple[float, float]]:
    """Each peer's (ns per sample, ns per second) between two stats() readings."""
    costs = {}
    for label, (run_ns, runs) in before.items():
        run_ns_after, runs_after = after[label]
        if runs_after == runs:
            raise RuntimeError(f"{label} never ran: is kernel.bpf_stats_enabled 1?")
        costs[label] = (
            (run_ns_after - run_ns) / (runs_after - runs),
            (run_ns_after - run_ns) / elapsed,
        )
    return costs


def perftop_cost(
    seconds: float, extra: Sequence[str], peers: AttachedPeers, peers_first: bool
) -> tuple[Cost, dict[str, tuple[float, float]]]:
    """Median (ns per sample, ns per second) over perftop's intervals, the first one left out,
    and how many processes it showed Python frames of (other load on the machine: the Python
    walk runs for those processes' samples only); and the peers' costs over the same
    intervals (read when perftop reports its first interval and its last).

    The peers are attached before perftop starts when `peers_first`, else once perftop reports
    its first interval (its program is attached by then): on a timer tick the programs run one
    after another, and the order in which they were attached moves the figures by a few
    percent, so the rounds take both orders."""
    argv = [*PERFTOP, "--batch", "-F", str(FREQUENCY), "--format", "json", "-d", "1", *extra]
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "run.jsonl"
        if peers_first:
            peers.attach()
        with subprocess.Popen(
            [*argv, "-n", str(int(seconds) + 1), "--record", str(recording)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as process:
            assert process.stdout is not None
            reports, readings = [], []
            for line in process.stdout:
                if not reports and not peers_first:
                    peers.attach()
                readings.append((time.monotonic(), peers.stats()))
                reports.append(line)
        peers.detach()
        if process.returncode != 0 or len(reports) < 2:
            raise RuntimeError(f"perftop {' '.join(extra)} failed: exit {process.returncode}")
        lines = [json.loads(line) for line in recording.read_text().splitlines()]
    python = python_pids([line for line in lines if not line.get("preview")])
    costs = [json.loads(line)["cost"] for line in reports[1:]]
    per_sample = [cost["bpf_ns_per_sample"] for cost in costs if cost["bpf_ns_per_sample"]]
    per_second = [cost["bpf_run_ns_per_s"] for cost in costs if cost["bpf_run_ns_per_s"]]
    if not per_sample:
        raise RuntimeError("perftop reported no BPF run time: is kernel.bpf_stats_enabled 1?")
    (started, before), (ended, after) = readings[0], readings[-1]
    return (median(per_sample), median(per_second), python), peer_costs(
        before, after, ended - started
    )


@dataclass(frozen=True, slots=True)
class UnwindRun:
    """Medians over one perftop run's intervals after its first WARM_INTERVALS."""

    ns_per_sample: float  # run time / the workload's counted samples
    ns_per_run: float  # perftop's bpf_ns_per_sample: over every run, filtered ones too
    frames: float  # native user frames per sample (median over samples)
    rows_used: int
    rows_size: int


def perftop_unwind_run(mode: str, pids: set[int], intervals: int, recording: Path) -> UnwindRun:
    recording.unlink(missing_ok=True)
    argv = [*PERFTOP, "--batch", "-F", str(FREQUENCY), "--format", "json", "-d", "1"]
    argv += ["-n", str(WARM_INTERVALS + intervals), "--record", str(recording)]
    argv += ["-p", ",".join(str(pid) for pid in sorted(pids)), "--unwind", mode, "--no-python"]
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    lines = [line for line in lines if not line.get("preview")][WARM_INTERVALS:]
    per_sample = [
        line["cost"]["bpf_run_ns_per_s"] * line["interval_s"] / counted
        for line in lines
        if line["cost"]["bpf_run_ns_per_s"] and (counted := sum(cpu[1] for cpu in line["cpus"]))
    ]
    if not per_sample:
        raise RuntimeError("perftop reported no BPF run time: is kernel.bpf_stats_enabled 1?")
    per_run = [line["cost"]["bpf_ns_per_sample"] for line in lines]
    return UnwindRun(
        ns_per_sample=median(per_sample),
        ns_per_run=median([value for value in per_run if value]),
        frames=median_over_samples(recorded_stacks(lines, pids), lambda s: s.frame_count),
        rows_used=max(line["cost"]["unwind_rows_used"] for line in lines),
        rows_size=lines[-1]["cost"]["unwind_rows_size"],
    )


def filtered_floor_cost(pids: set[int], seconds: float) -> float:
    """ns per workload sample of FILTERED_FLOOR_PROGRAM over `seconds`, after a first second."""
    from bcc import BPF, PerfSWConfig, PerfType

    os.environ.setdefault("BCC_KERNEL_SOURCE", str(locate_headers().path))
    bpf = BPF(text=FILTERED_FLOOR_PROGRAM)
    try:
        wanted = bpf[b"wanted"]
        for pid in pids:
            wanted[wanted.Key(pid)] = wanted.Leaf(1)
        walked = bpf[b"walked"]

        def walked_count() -> int:
            # One value per CPU: ints from BCC's array of u64 (a ctypes value from older BCC).
            values = walked[walked.Key(0)]
            return sum(int(getattr(value, "value", value)) for value in values)

        bpf.attach_perf_event(
            ev_type=PerfType.SOFTWARE,
            ev_config=PerfSWConfig.CPU_CLOCK,
            fn_name="do_perf_event",
            sample_freq=FREQUENCY,
        )
        prog_fd = bpf.funcs[b"do_perf_event"].fd
        time.sleep(1.0)
        run_ns, _ = run_stats(prog_fd)
        samples = walked_count()
        time.sleep(seconds)
        run_ns_after, _ = run_stats(prog_fd)
        samples_after = walked_count()
    finally:
        bpf.cleanup()
    if samples_after == samples:
        raise RuntimeError("the floor program walked no workload sample")
    return (run_ns_after - run_ns) / (samples_after - samples)


def per_frame(ns: float, frames: float) -> float | None:
    return ns / frames if frames > 0 else None  # NaN (no samples) is not > 0 either


def best_cpu_seconds(work: Callable[[], object], times: int = 3) -> float:
    best = float("inf")
    for _ in range(times):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def table_build_figure(path: Path) -> Figure:
    """Cold (build_unwind_info, no cache) against cached (load_unwind_info from a temporary
    cache root it filled), in CPU seconds, the best of three each."""
    real = path.resolve()
    info = build_unwind_info(real)
    cold = best_cpu_seconds(lambda: build_unwind_info(real))
    with tempfile.TemporaryDirectory() as cache_root:
        load_unwind_info(real, Path(cache_root))  # fills the cache

        def cached_load() -> None:
            loaded = load_unwind_info(real, Path(cache_root))
            assert loaded.from_cache, loaded.cache_problem

        cached = best_cpu_seconds(cached_load)
    rows = len(info.table)
    print(
        f"table {real.name:<12} {rows:>8,} rows ({rows * ROW_SIZE / 1024:,.0f} KiB)  cold "
        f"{cold * 1000:7.1f} ms  cached {cached * 1000:6.1f} ms CPU",
        flush=True,
    )
    return Figure(
        name=f"unwind table load from the cache, {real.name}",
        unit="ms CPU",
        perftop=cached * 1000,
        peer_name="built cold (no cache)",
        peer=cold * 1000,
        note=f"perftop.unwind load_unwind_info vs build_unwind_info, best of 3; {rows:,} rows, "
        f"{rows * ROW_SIZE / 1024:,.0f} KiB",
    )


def unwind_figures(label: str, argv: list[str], intervals: int, workdir: Path) -> list[Figure]:
    """table vs fp vs the floor on two copies of `argv`, one per CPU."""
    runs: dict[str, UnwindRun] = {}
    with Group() as group:
        workload = {group.start(["taskset", "-c", str(cpu), *argv]).pid for cpu in range(2)}
        time.sleep(1.0)
        for mode in UNWIND_MODES:
            runs[mode] = perftop_unwind_run(mode, workload, intervals, workdir / "unwind.jsonl")
            run = runs[mode]
            frame_ns = number(per_frame(run.ns_per_sample, run.frames), 0)
            print(
                f"{label:<10} --unwind {mode:<5} {run.ns_per_sample:>8.0f} ns/sample "
                f"{run.frames:>5.1f} frames {frame_ns:>6} ns/frame "
                f"(per run {run.ns_per_run:.0f} ns; rows {run.rows_used:,})",
                flush=True,
            )
        floor = filtered_floor_cost(workload, intervals)
        fp_frames = runs["fp"].frames
        print(
            f"{label:<10} floor         {floor:>8.0f} ns/sample {fp_frames:>5.1f} frames "
            f"{number(per_frame(floor, fp_frames), 0):>6} ns/frame",
            flush=True,
        )
    table, fp = runs["table"], runs["fp"]
    setting = (
        f"{FREQUENCY} Hz, -p the workload --no-python, 2 CPUs busy (2x {label}), "
        f"{intervals} intervals after perftop's first {WARM_INTERVALS}"
    )
    frames = f"frames per sample: table {table.frames:.1f}, fp {fp.frames:.1f}"
    return [
        Figure(
            f"BPF run time per workload sample, {label}, --unwind table",
            "ns",
            table.ns_per_sample,
            peer_name="--unwind fp, same workload",
            peer=fp.ns_per_sample,
            note=f"{setting}; {frames}",
        ),
        Figure(
            f"BPF run time per workload sample, {label}, --unwind table, against the floor",
            "ns",
            table.ns_per_sample,
            peer_name="floor: get_stackid user walk alone, pid-filtered",
            peer=floor,
            note=f"{setting}; the floor walks frame pointers: {fp.frames:.1f} frames",
        ),
        Figure(
            f"BPF run time per native frame, {label}, --unwind table",
            "ns",
            per_frame(table.ns_per_sample, table.frames),
            peer_name="--unwind fp, same workload",
            peer=per_frame(fp.ns_per_sample, fp.frames),
            note=f"{setting}; ns per sample / median frames; {frames}; floor "
            f"{number(per_frame(floor, fp.frames), 0)} ns per frame",
        ),
        Figure(
            f"unwind table memory, {label}",
            "KiB",
            table.rows_used * ROW_SIZE / 1024,
            peer_name="the rows array, fixed at load",
            peer=table.rows_size * ROW_SIZE / 1024,
            note=f"{table.rows_used:,} rows used x {ROW_SIZE} bytes, from the --record cost",
        ),
    ]


def stackgen_rounds(seconds: float, rounds: int) -> dict[str, list[Cost]]:
    """The cost of every program, one list entry per perftop run: profile.py's and the
    floor's lists hold their figures over each perftop run, in the order of `paired`."""
    results: dict[str, list[Cost]] = {label: [] for label, _ in PERFTOP_VARIANTS}
    paired: dict[str, dict[str, list[Cost]]] = {
        label: {"profile.py": [], "floor": []} for label, _ in PERFTOP_VARIANTS
    }
    with AttachedPeers() as peers:
        for round_number in range(rounds):
            order = PERFTOP_VARIANTS if round_number % 2 == 0 else PERFTOP_VARIANTS[::-1]
            peers_first = round_number % 2 == 0
            for label, extra in order:
                cost, peer = perftop_cost(seconds, extra, peers, peers_first)
                results[label].append(cost)
                for peer_label, (per_sample, per_second) in peer.items():
                    paired[label][peer_label].append((per_sample, per_second, 0))
                print(
                    f"round {round_number + 1} ({'peers' if peers_first else 'perftop'} "
                    f"attached first)  {label:<34} {cost[0]:>8.0f} ns/sample "
                    f"{cost[1] / 1000:>8.1f} µs/s  Python processes {cost[2]}; same run: "
                    f"profile.py {peer['profile.py'][0]:.0f}, floor {peer['floor'][0]:.0f} ns",
                    flush=True,
                )
    for peer_label in ("profile.py", "floor"):
        results[peer_label] = [
            cost for label, _ in PERFTOP_VARIANTS for cost in paired[label][peer_label]
        ]
    for label, _ in PERFTOP_VARIANTS:
        for peer_label in ("profile.py", "floor"):
            results[f"{peer_label} beside {label}"] = paired[label][peer_label]
    return results


def spread(values: Sequence[float]) -> str:
    return f"{min(values):,.0f}..{max(values):,.0f}" if len(values) > 1 else "one round"


def stackgen_figures(results: dict[str, list[Cost]], setting: str) -> list[Figure]:
    def per_sample(label: str) -> list[float]:
        return [cost[0] for cost in results[label]]

    def per_second(label: str) -> list[float]:
        return [cost[1] / 1000 for cost in results[label]]

    default, fp, fp_no_python = (label for label, _ in PERFTOP_VARIANTS)
    # Each perftop variant against the peers attached during its own runs.
    peer = median(per_sample(f"profile.py beside {fp}"))
    floor = median(per_sample(f"floor beside {fp}"))
    fp_ns = median(per_sample(fp))

    def ranges(*labels: str) -> str:
        return "; ".join(f"{label} {spread(per_sample(label))} ns" for label in labels)

    walked = max(cost[2] for cost in results[fp])

    return [
        Figure(
            name="BPF run time per sample, FP stacks (--unwind fp)",
            unit="ns",
            perftop=fp_ns,
            peer_name="bcc profile.py program",
            peer=peer,
            target="ratio <= 1.0",
            met=fp_ns <= peer,
            note=f"{setting}; Python frames on, shown for {walked} processes (others' load: "
            f"perftop itself at most on a quiet machine); "
            f"{ranges(fp, f'profile.py beside {fp}')}",
        ),
        Figure(
            name="BPF run time per sample, FP stacks, --no-python",
            unit="ns",
            perftop=median(per_sample(fp_no_python)),
            peer_name="--unwind fp, Python frames on",
            peer=fp_ns,
            note=f"{setting}; {ranges(fp_no_python, fp)}",
        ),
        Figure(
            name="BPF run time per sample, defaults (table unwinding, Python frames)",
            unit="ns",
            perftop=median(per_sample(default)),
            peer_name="bcc profile.py program",
            peer=median(per_sample(f"profile.py beside {default}")),
            note=f"{setting}; perftop walks stackgen with its .eh_frame tables; "
            f"{ranges(default, f'profile.py beside {default}')}",
        ),
        Figure(
            name="BPF run time per sample, FP stacks, above the floor",
            unit="ns",
            perftop=fp_ns - floor,
            peer_name="floor: user stack walk alone",
            peer=floor,
            note=f"{setting}; the floor is the kernel's walk of the user stack and the stack "
            f"map; {ranges(f'floor beside {fp}')}",
        ),
        Figure(
            name="BPF run time per second, FP stacks",
            unit="µs/s",
            perftop=median(per_second(fp)),
            peer_name="bcc profile.py program",
            peer=median(per_second(f"profile.py beside {fp}")),
            note=setting,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per program")
    parser.add_argument("--rounds", type=int, default=2, help="turns of every program")
    parser.add_argument("--chains", type=int, default=1000, help="stackgen call chains")
    parser.add_argument(
        "--unwind-intervals", type=int, default=10, help="measured per unwinder and workload"
    )
    parser.add_argument("--no-unwinders", action="store_true", help="only the stackgen figures")
    add_json_argument(parser)
    args = parser.parse_args()
    exit_cleanly_on_signals()
    unwinding: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp, bpf_stats_enabled():
        with Group() as group:
            stackgen = build("stackgen.c", Path(tmp))
            start_stackgen(group, stackgen, args.chains, copies=2)
            time.sleep(1.0)
            results = stackgen_rounds(args.seconds, args.rounds)
        if not args.no_unwinders:
            print("\nunwinders on workloads without frame pointers", flush=True)
            chain = build_chain(Path(tmp))
            unwinding += unwind_figures(
                "chain", [str(chain), "3600"], args.unwind_intervals, Path(tmp)
            )
            if PYTHON.exists():
                python_argv = [str(PYTHON), str(BENCH / "python_work.py"), "3600"]
                unwinding += unwind_figures(
                    "python3.11", python_argv, args.unwind_intervals, Path(tmp)
                )
            else:
                print(f"{PYTHON} is not installed: no python3.11 figures")
    if not args.no_unwinders:
        for binary in (PYTHON, LIBC):
            if binary.exists():
                unwinding.append(table_build_figure(binary))
    setting = (
        f"{FREQUENCY} Hz, 2 CPUs busy (2x stackgen {args.chains} chains, frame pointers), "
        f"{args.seconds:.0f} s per perftop run with profile.py's program and the floor attached "
        f"alongside, median of {args.rounds} alternating rounds (the peers attached first in half "
        f"of them, perftop in the other half)"
    )
    figures = stackgen_figures(results, setting) + unwinding
    print(f"\nBPF program cost: {setting}, kernel.bpf_stats_enabled=1")
    return report_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
