"""Every benchmark in bench/, one after the other, and bench/RESULTS.md from what they measured.

Each script runs as its own process and prints its own table (shown here as it runs). The
scripts written for issue 6 hand their figures over as JSON (`--json FILE`); the figures of
accuracy.py and interval_work.py are read from their printed tables. RESULTS.md gets the machine,
the date, one table of every figure beside its peer from the same run, and each script's full
output, so no number in it is typed by hand. A run of some of them (`--only`) keeps what the
previous RESULTS.md said of the others (bench/results_merge.py), each dated under "Runs" with its
commit and machine. Before each script, the processes of others that
are busy on the machine get up to a minute to finish (`--quiet-wait`), and whatever was still
busy is noted beside the results, so a noisy run can be recognised.

Exits non-zero when a target of this run is missed or a benchmark fails; RESULTS.md is written
either way.
Run: `make bench` (about 20 minutes), or `.venv/bin/python bench/run_all.py --only startup,soak`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    BENCH,
    ROOT,
    Figure,
    busy_strangers,
    exit_cleanly_on_signals,
    machine,
    number,
    read_figures,
    verdict,
)
from results_merge import KeptRun, kept_runs, record_line

RESULTS = BENCH / "RESULTS.md"


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str  # the script's stem
    args: tuple[str, ...] = ()
    reports_json: bool = True  # False: figures are parsed from the printed table
    # Stopped after this long: perf itself has hung for good here, blocked opening a FIFO that
    # the fault tests left at /tmp/perf-PID.map.
    timeout_s: float = 600.0


BENCHMARKS = (
    Benchmark("steady_state"),
    # A recording of steady_state's load (one BPF compile), then two 30 s windows without load.
    Benchmark("screen_cost"),
    Benchmark("job_cost"),
    # The frame-pointer workload (five programs, two alternating rounds), then both unwinders
    # on two workloads without frame pointers.
    Benchmark("bpf_cost", timeout_s=900.0),
    # Beside bpf_cost's frame-pointer-only figure: Python frames on and off, alternating.
    Benchmark("python_cost", timeout_s=600.0),
    Benchmark("startup"),
    Benchmark("interval_work", reports_json=False),
    # Two stackgen loads, then the busy box (zoomed Down presses): three BPF compiles.
    Benchmark("responsiveness", timeout_s=900.0),
    # The issue's 10 minutes: with 2, the second half was still warm-up for the symbol caches.
    Benchmark("soak", ("--minutes", "10"), timeout_s=900.0),
    Benchmark("accuracy", reports_json=False, timeout_s=300.0),
    # Against perf --call-graph dwarf: two BPF compiles, 12 s each, and perf script's unwinding.
    Benchmark("unwind_accuracy", timeout_s=400.0),
    # Four interpreters, each a BPF compile and 10 s of work.
    Benchmark("python_accuracy", timeout_s=400.0),
)
STOP_GRACE_S = 30.0


@dataclass(slots=True)
class Outcome:
    benchmark: Benchmark
    status: int = 0
    seconds: float = 0.0
    output: str = ""
    strangers: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    run_at: str = ""  # when, at which commit and where it ran: this run, or an earlier one kept
    commit: str = ""
    machine: str = ""
    ratios: list[str] = field(default_factory=list)  # kept ratio cells, as first written


def wait_for_quiet(limit_s: float) -> list[str]:
    """Wait up to `limit_s` for other people's processes to leave the CPUs; what was still busy
    when the wait ended (empty on a quiet machine, which never waits)."""
    deadline = time.monotonic() + limit_s
    busy = busy_strangers()
    if busy:
        print(f"waiting up to {limit_s:.0f} s for a quieter machine: {', '.join(busy)}", flush=True)
    while busy and time.monotonic() < deadline:
        time.sleep(4.0)
        busy = busy_strangers()
    return busy


def run(benchmark: Benchmark, workdir: Path, quiet_wait_s: float = 0.0) -> Outcome:
    outcome = Outcome(benchmark, strangers=wait_for_quiet(quiet_wait_s))
    argv = [sys.executable, str(BENCH / f"{benchmark.name}.py"), *benchmark.args]
    figures_file = workdir / f"{benchmark.name}.json"
    if benchmark.reports_json:
        argv += ["--json", str(figures_file)]
    print(f"\n=== {benchmark.name} {' '.join(benchmark.args)}".rstrip(), flush=True)
    started = time.monotonic()
    # Its own process group, so whatever it started without a session of its own (perf record
    # in accuracy.py) is stopped with it.
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    echo = threading.Thread(target=_echo, args=(process, lines), daemon=True)
    echo.start()
    try:
        process.wait(benchmark.timeout_s)
    except subprocess.TimeoutExpired:
        lines.append(f"\n[run_all: stopped after {benchmark.timeout_s:.0f} s]\n")
        print(lines[-1], flush=True)
    finally:
        _stop(process)  # also on ^C and SIGTERM: the script's own `finally` blocks clean up
        echo.join(5.0)
    outcome.status = process.returncode
    outcome.seconds = time.monotonic() - started
    outcome.output = "".join(lines)
    if benchmark.reports_json:
        outcome.figures = read_figures(figures_file) if figures_file.exists() else []
    elif benchmark.name == "accuracy":
        outcome.figures = accuracy_figures(outcome.output)
    else:
        outcome.figures = interval_work_figures(outcome.output)
    if not outcome.figures:
        outcome.figures = [
            Figure(benchmark.name, "", None, met=False, note=f"no figures (exit {outcome.status})")
        ]
    return outcome


def _echo(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)


def _stop(process: subprocess.Popen[str]) -> None:
    """A script still running: SIGTERM to its group (the scripts clean up on it), then SIGKILL
    to whatever is left of the group after a grace."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def accuracy_figures(output: str) -> list[Figure]:
    match = re.search(
        r"worst share difference ([\d.]+) points \(target <= 3\); "
        r"top-5 overlap (\d)/5; (PASS|FAIL)",
        output,
    )
    if not match:
        return []
    peer = "perf record -a -g"
    return [
        Figure(
            "accuracy: worst per-process share difference",
            "points",
            float(match.group(1)),
            peer_name=peer,
            target="<= 3",
            met=float(match.group(1)) <= 3.0,
            note="perftop's share minus perf's, same seconds, same workloads",
        ),
        Figure(
            "accuracy: top-5 functions shared with perf",
            "of 5",
            float(match.group(2)),
            peer_name=peer,
            target=">= 3, same hottest",
            met=match.group(3) == "PASS",
        ),
    ]


def interval_work_figures(output: str) -> list[Figure]:
    figures = []
    row = re.compile(
        r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(<= \d+ ms|-)(\s+MISSED)?\s*$",
        re.MULTILINE,
    )
    for match in row.finditer(output):
        judged = match.group(6) != "-"
        figures.append(
            Figure(
                f"per-interval work, {match.group(2)} stacks",
                "ms CPU",
                float(match.group(3)),
                target=match.group(6) if judged else "",
                met=(match.group(7) is None) if judged else None,
                note=f"stackgen {match.group(1)} chains; wall {match.group(4)} ms; "
                f"{match.group(5)} µs per stack",
            )
        )
    growth = re.search(r"growth: ([\d.]+)x the per-stack cost", output)
    if growth:
        figures.append(
            Figure(
                "per-interval work: per-stack cost, largest / smallest",
                "x",
                float(growth.group(1)),
                target="<= 1.5x (linear)",
                met=float(growth.group(1)) <= 1.5,
            )
        )
    return figures


def current_commit() -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{commit or 'unknown'}{'+local-changes' if dirty else ''}"


def figures_from_output(name: str, output: str) -> list[Figure] | None:
    """The figures of a script that prints them only as its table (None: it hands them over
    as JSON, and they are in the summary table)."""
    if name == "accuracy":
        return accuracy_figures(output)
    if name == "interval_work":
        return interval_work_figures(output)
    return None


def with_kept(outcomes: list[Outcome], path: Path) -> list[Outcome]:
    """This run's outcomes and, for every benchmark it did not run, what `path` (the previous
    RESULTS.md) said of it, in BENCHMARKS order."""
    ran = {outcome.benchmark.name: outcome for outcome in outcomes}
    previous = path.read_text() if path.exists() else ""
    others = [benchmark.name for benchmark in BENCHMARKS if benchmark.name not in ran]
    kept = kept_runs(previous, others, figures_from_output)
    merged = []
    for benchmark in BENCHMARKS:
        if benchmark.name in ran:
            merged.append(ran[benchmark.name])
        elif benchmark.name in kept:
            run = kept[benchmark.name]
            merged.append(
                Outcome(
                    benchmark,
                    run.status,
                    run.seconds,
                    run.output,
                    run.strangers,
                    run.figures,
                    run.run_at,
                    run.commit,
                    run.machine,
                    run.ratios,
                )
            )
    return merged


def markdown(
    outcomes: list[Outcome], ran: list[str], started: datetime.datetime, seconds: float
) -> str:
    info = machine()
    kept = [outcome.benchmark.name for outcome in outcomes if outcome.benchmark.name not in ran]
    lines = [
        "# perftop benchmark results",
        "",
        "Written by `make bench` (bench/run_all.py); every number below was measured by it.",
        "A run of some benchmarks (`--only`) keeps the sections of the others from the earlier",
        'runs, which "Runs" dates.',
        "",
        f"- date: {started:%Y-%m-%d %H:%M:%S %Z} ({seconds / 60:.1f} minutes): {', '.join(ran)}",
        f"- kept from earlier runs: {', '.join(kept) or 'none'}",
        f"- machine: {info['cpus']} CPUs, {info['cpu_model']}, {info['memory']}",
        f"- kernel: {info['kernel']}; {info['perf']}; Python {info['python']}",
        f"- perftop: {current_commit()}",
        "",
        "| figure | perftop | peer | peer's figure | ratio | target | met? | conditions |",
        "|---|---:|---|---:|---:|---|---|---|",
    ]
    for outcome in outcomes:
        ratios = outcome.ratios or [number(figure.ratio) for figure in outcome.figures]
        for figure, ratio in zip(outcome.figures, ratios, strict=True):
            name = f"{figure.name} ({figure.unit})" if figure.unit else figure.name
            lines.append(
                f"| {name} | {number(figure.perftop)} | {figure.peer_name or '-'} | "
                f"{number(figure.peer)} | {ratio} | {figure.target or '-'} | "
                f"{verdict(figure.met)} | {figure.note.replace('|', '/')} |"
            )
    lines += ["", "## Runs", ""]
    for outcome in outcomes:
        others = ", ".join(outcome.strangers) or "none"
        lines.append(
            f"- `{outcome.benchmark.name}`: exit {outcome.status}, {outcome.seconds:.0f} s, "
            f"run {outcome.run_at} at {outcome.commit} on {outcome.machine}; "
            f"others' busy processes when it started: {others}"
        )
    for outcome in outcomes:
        command = " ".join([f"bench/{outcome.benchmark.name}.py", *outcome.benchmark.args])
        record = KeptRun(
            outcome.benchmark.name,
            outcome.status,
            round(outcome.seconds),
            outcome.run_at,
            outcome.commit,
            outcome.machine,
            outcome.strangers,
            outcome.figures,
            outcome.ratios,
        )
        lines += [
            "",
            f"## {outcome.benchmark.name}",
            "",
            record_line(record),
            "",
            f"`.venv/bin/python {command}`",
            "",
            "```",
            outcome.output.rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the Markdown to write")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="before each benchmark, wait up to this long for others' busy processes to end",
    )
    args = parser.parse_args()
    exit_cleanly_on_signals()
    chosen = BENCHMARKS
    if args.only:
        names = set(args.only.split(","))
        unknown = names - {benchmark.name for benchmark in BENCHMARKS}
        if unknown:
            parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
        chosen = tuple(benchmark for benchmark in BENCHMARKS if benchmark.name in names)
    started = datetime.datetime.now().astimezone()
    began = time.monotonic()
    outcomes = []
    commit = current_commit()
    info = machine()
    here = f"{info['cpus']} CPUs, {info['cpu_model']}, {info['memory']}, kernel {info['kernel']}"
    with tempfile.TemporaryDirectory() as tmp:
        for benchmark in chosen:
            run_at = f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}"
            outcome = run(benchmark, Path(tmp), args.quiet_wait)
            outcome.run_at = run_at
            outcome.commit = commit
            outcome.machine = here
            outcomes.append(outcome)
    ran = [outcome.benchmark.name for outcome in outcomes]
    every = with_kept(outcomes, args.output)
    args.output.write_text(markdown(every, ran, started, time.monotonic() - began))
    # Judged on this run's benchmarks only: the kept ones were judged when they ran.
    failed = [o.benchmark.name for o in outcomes if o.status != 0]
    missed = [f.name for o in outcomes for f in o.figures if f.met is False]
    print(f"\nwrote {args.output}; {len(missed)} targets missed: {'; '.join(missed) or 'none'}")
    if failed:
        print(f"benchmarks that exited non-zero: {', '.join(failed)}")
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
