"""Every benchmark in bench/, one after the other, and bench/RESULTS.md from what they measured.

Each script runs as its own process and prints its own table (shown here as it runs). The
scripts written for issue 6 hand their figures over as JSON (`--json FILE`); the figures of
accuracy.py and interval_work.py are read from their printed tables. RESULTS.md gets the machine,
the date, one table of every figure beside its peer from the same run, and each script's full
output, so no number in it is typed by hand. Before each script, the processes of others that
are busy on the machine get up to a minute to finish (`--quiet-wait`), and whatever was still
busy is noted beside the results, so a noisy run can be recognised.

Exits non-zero when a target is missed or a benchmark fails; RESULTS.md is written either way.
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
    Benchmark("job_cost"),
    Benchmark("bpf_cost", timeout_s=300.0),
    Benchmark("startup"),
    Benchmark("interval_work", reports_json=False),
    Benchmark("responsiveness"),
    # The issue's 10 minutes: with 2, the second half was still warm-up for the symbol caches.
    Benchmark("soak", ("--minutes", "10"), timeout_s=900.0),
    Benchmark("accuracy", reports_json=False, timeout_s=300.0),
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


def markdown(outcomes: list[Outcome], started: datetime.datetime, seconds: float) -> str:
    info = machine()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    lines = [
        "# perftop benchmark results",
        "",
        "Written by `make bench` (bench/run_all.py); every number below was measured in this run.",
        "",
        f"- date: {started:%Y-%m-%d %H:%M:%S %Z} ({seconds / 60:.1f} minutes)",
        f"- machine: {info['cpus']} CPUs, {info['cpu_model']}, {info['memory']}",
        f"- kernel: {info['kernel']}; {info['perf']}; Python {info['python']}",
        f"- perftop: {commit or 'unknown commit'}{' with local changes' if dirty else ''}",
        "",
        "| figure | perftop | peer | peer's figure | ratio | target | met? | conditions |",
        "|---|---:|---|---:|---:|---|---|---|",
    ]
    for outcome in outcomes:
        for figure in outcome.figures:
            name = f"{figure.name} ({figure.unit})" if figure.unit else figure.name
            lines.append(
                f"| {name} | {number(figure.perftop)} | {figure.peer_name or '-'} | "
                f"{number(figure.peer)} | {number(figure.ratio)} | {figure.target or '-'} | "
                f"{verdict(figure.met)} | {figure.note.replace('|', '/')} |"
            )
    lines += ["", "## Runs", ""]
    for outcome in outcomes:
        others = ", ".join(outcome.strangers) or "none"
        lines.append(
            f"- `{outcome.benchmark.name}`: exit {outcome.status}, {outcome.seconds:.0f} s; "
            f"others' busy processes when it started: {others}"
        )
    for outcome in outcomes:
        command = " ".join([f"bench/{outcome.benchmark.name}.py", *outcome.benchmark.args])
        lines += [
            "",
            f"## {outcome.benchmark.name}",
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
    with tempfile.TemporaryDirectory() as tmp:
        for benchmark in chosen:
            outcomes.append(run(benchmark, Path(tmp), args.quiet_wait))
    args.output.write_text(markdown(outcomes, started, time.monotonic() - began))
    failed = [o.benchmark.name for o in outcomes if o.status != 0]
    missed = [f.name for o in outcomes for f in o.figures if f.met is False]
    print(f"\nwrote {args.output}; {len(missed)} targets missed: {'; '.join(missed) or 'none'}")
    if failed:
        print(f"benchmarks that exited non-zero: {', '.join(failed)}")
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
