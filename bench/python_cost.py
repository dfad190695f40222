"""What Python frames cost: perftop with them and with `--no-python`, alternating on the same
Python workload, for the BPF program's run time per sample and perftop's user-space work per
interval.

Both CPUs are busy with two copies of bench/python_work.py running DEPTH calls below main (so
the program walks that many Python frames more than the work's five), for each INTERPRETER:DEPTH
of `--setups`. Each round starts `perftop --batch -F 999 -d 1 -p WORKLOAD` once with Python
frames and once without (the order alternates round to round). perftop's `--record` file gives
each interval's cost (its JSON output has no drain_cpu_ms): the program's run time (fdinfo
run_time_ns, with kernel.bpf_stats_enabled=1 for the run, put back on every way out), drain_ms
and drain_cpu_ms (the drain's wall and thread CPU time: counts, stacks, symbols, Python frames
named). The first interval of each run is left out; a figure is the median over the rounds of
each run's median.

Why `-p`: this machine is shared, and system-wide the other people's processes (their Python
tests too, walked as well) were up to 60% of the samples, in both modes. With `-p` the others'
samples end at the pid filter, so the figure is the program's run time per interval over the
workload's counted samples: an upper bound for one workload sample, since the filtered ones'
early return (a map lookup) is charged to it. perftop's own bpf_ns_per_sample (run time over
every run of the program, filtered ones included) is printed beside it. bench/bpf_cost.py's
frame-pointer-only figure is system-wide on a C workload; the `--no-python` peer here is the
same walk on this Python workload, in the same run.

Reported, not judged (issue 13 sets no target); the peer is `--no-python` in the same run.
Run: `.venv/bin/python bench/python_cost.py [--rounds 3] [--setups debian-3.11:20]`
(part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import (
    BENCH,
    PERFTOP,
    ROOT,
    Figure,
    Group,
    add_json_argument,
    bpf_stats_enabled,
    exit_cleanly_on_signals,
    median,
    python_interpreters,
    report_figures,
)

WORKLOAD = BENCH / "python_work.py"
FREQUENCY = 999
MODES = ("python", "no-python")
# interpreter:depth. Debian's (stripped, no frame pointers) at two depths, so the cost per
# Python frame shows; pyenv's 3.12 for the 3.12+ frame layout.
DEFAULT_SETUPS = "debian-3.11:0,debian-3.11:20,pyenv-3.12.1:20"


@dataclass(frozen=True, slots=True)
class RunCost:
    """Medians over one perftop run's intervals, its first one left out."""

    bpf_ns_per_sample: float  # run time / the workload's counted samples
    bpf_ns_per_run: float  # perftop's bpf_ns_per_sample: over every run, filtered ones too
    drain_ms: float
    drain_cpu_ms: float
    cpu_percent: float
    python_processes: int  # processes whose stacks held Python frames (0 with --no-python)


def perftop_run(mode: str, intervals: int, recording: Path, workload: set[int]) -> RunCost:
    recording.unlink(missing_ok=True)
    argv = [*PERFTOP, "--batch", "-F", str(FREQUENCY), "--format", "json", "-d", "1"]
    argv += ["-n", str(intervals + 1), "--record", str(recording)]
    argv += ["-p", ",".join(str(pid) for pid in sorted(workload))]
    if mode == "no-python":
        argv.append("--no-python")
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    lines = [json.loads(line) for line in recording.read_text().splitlines()[1:]]
    costs = [line["cost"] for line in lines]
    per_run = [cost["bpf_ns_per_sample"] for cost in costs if cost["bpf_ns_per_sample"]]
    per_sample = [
        line["cost"]["bpf_run_ns_per_s"] * line["interval_s"] / counted
        for line in lines
        if line["cost"]["bpf_run_ns_per_s"] and (counted := sum(cpu[1] for cpu in line["cpus"]))
    ]
    if not per_sample:
        raise RuntimeError("perftop reported no BPF run time: is kernel.bpf_stats_enabled 1?")
    return RunCost(
        bpf_ns_per_sample=median(per_sample),
        bpf_ns_per_run=median(per_run),
        drain_ms=median([cost["drain_ms"] for cost in costs]),
        drain_cpu_ms=median([cost["drain_cpu_ms"] for cost in costs]),
        cpu_percent=median([cost["cpu_percent"] for cost in costs]),
        python_processes=python_pids(lines),
    )


def python_pids(lines: list[dict[str, Any]]) -> int:
    """Processes with a Python frame in any stack of the recording (frames whose module is a
    .py file: perftop names a Python frame's module by its code's file)."""
    pids = set()
    for line in lines:
        python = {index for index, frame in enumerate(line["frames"]) if frame[1].endswith(".py")}
        for stack in line["stacks"]:  # pid, tid, comm, frames, samples, period[, cgroup id]
            pid, frames = stack[0], stack[3]
            if python.intersection(frames):
                pids.add(pid)
    return len(pids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each mode")
    parser.add_argument("--intervals", type=int, default=5, help="measured intervals per run")
    parser.add_argument(
        "--setups",
        default=DEFAULT_SETUPS,
        help="comma-separated INTERPRETER:DEPTH (depth: Python calls below main)",
    )
    add_json_argument(parser)
    args = parser.parse_args()
    exit_cleanly_on_signals()
    interpreters = python_interpreters()
    setups = [
        (label, int(depth))
        for label, _, depth in (setup.partition(":") for setup in args.setups.split(","))
    ]
    figures = []
    walk_added: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp, bpf_stats_enabled():
        recording = Path(tmp) / "perftop.jsonl"
        for label, depth in setups:
            python = interpreters[label]
            if not python.exists():
                print(f"{label}: {python} not installed")
                continue
            runs: dict[str, list[RunCost]] = {mode: [] for mode in MODES}
            print(f"{label}: 2x bench/{WORKLOAD.name} --depth {depth}", flush=True)
            print(
                f"{'round':>5} {'mode':>9} {'bpf ns':>8} {'drain ms':>9} {'cpu ms':>8} "
                f"{'CPU %':>6} {'py procs':>8} {'per run':>8}"
            )
            with Group() as group:
                argv = [str(python), str(WORKLOAD), "3600", "--depth", str(depth)]
                workload = {group.start(argv).pid for _ in range(2)}
                for round_index in range(args.rounds):
                    order = MODES if round_index % 2 == 0 else MODES[::-1]
                    for mode in order:
                        cost = perftop_run(mode, args.intervals, recording, workload)
                        runs[mode].append(cost)
                        print(
                            f"{round_index + 1:>5} {mode:>9} {cost.bpf_ns_per_sample:8.0f} "
                            f"{cost.drain_ms:9.2f} {cost.drain_cpu_ms:8.2f} "
                            f"{cost.cpu_percent:6.2f} {cost.python_processes:>8} "
                            f"{cost.bpf_ns_per_run:8.0f}",
                            flush=True,
                        )
            figures += label_figures(label, depth, runs, args)
            walk_added[label, depth] = median(
                [cost.bpf_ns_per_sample for cost in runs["python"]]
            ) - median([cost.bpf_ns_per_sample for cost in runs["no-python"]])
            print()
    figures += per_frame_figures(walk_added)
    print(f"Python frames' cost: {FREQUENCY} Hz, kernel.bpf_stats_enabled=1")
    return report_figures(figures, args.json)


def per_frame_figures(walk_added: dict[tuple[str, int], float]) -> list[Figure]:
    """For an interpreter measured at two depths: what each Python frame more adds to the
    walk, from the difference of the walk's cost (Python frames on minus off) at each depth."""
    figures = []
    for label in dict.fromkeys(label for label, _ in walk_added):
        depths = sorted(depth for known, depth in walk_added if known == label)
        if len(depths) < 2:
            continue
        low, high = depths[0], depths[-1]
        per_frame = (walk_added[label, high] - walk_added[label, low]) / (high - low)
        figures.append(
            Figure(
                f"BPF walk per Python frame, {label}",
                "ns",
                per_frame,
                peer_name=f"walk added at depth {low}",
                peer=walk_added[label, low],
                note=f"(walk added at depth {high} - at depth {low}) / {high - low} frames",
            )
        )
    return figures


def label_figures(
    label: str, depth: int, runs: dict[str, list[RunCost]], args: argparse.Namespace
) -> list[Figure]:
    def of(mode: str, field: str) -> float:
        return median([getattr(cost, field) for cost in runs[mode]])

    setting = (
        f"{FREQUENCY} Hz, -p the workload, 2 CPUs busy (2x python_work.py --depth {depth}: "
        f"{depth + 5} Python frames); "
        f"median of {args.rounds} alternating runs of {args.intervals} intervals"
    )
    peer = "--no-python, same run"
    on_ns, off_ns = of("python", "bpf_ns_per_sample"), of("no-python", "bpf_ns_per_sample")
    return [
        Figure(
            f"BPF run time per workload sample, Python frames on, {label}, depth {depth}",
            "ns",
            on_ns,
            peer_name=peer,
            peer=off_ns,
            note=f"{setting}; walk added {on_ns - off_ns:+.0f} ns",
        ),
        Figure(
            f"drain CPU per interval, Python frames on, {label}, depth {depth}",
            "ms",
            of("python", "drain_cpu_ms"),
            peer_name=peer,
            peer=of("no-python", "drain_cpu_ms"),
            note=f"{setting}; wall {of('python', 'drain_ms'):.1f} ms vs "
            f"{of('no-python', 'drain_ms'):.1f} ms",
        ),
        Figure(
            f"perftop's CPU, Python frames on, {label}, depth {depth}",
            "% of a CPU",
            of("python", "cpu_percent"),
            peer_name=peer,
            peer=of("no-python", "cpu_percent"),
            note=f"{setting}; batch JSON and --record",
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
