"""Accuracy of perftop's Python frames against py-spy, on every CPython on the machine.

For each interpreter (Debian's python3.11, stripped and without frame pointers, and pyenv's
3.11.7, 3.12.1, 3.13.0) py-spy launches bench/python_work.py (hot 70%, warm 20%, cool 10% of its
rounds), the only way py-spy can sample here: `py-spy record --nonblocking -f raw -r 100`.
perftop samples that child (`-p PID -F 999 --format folded`, `--record` to see its intervals).
The child waits blocked for SIGUSR1 until perftop has drained its first interval, then works
for `--seconds` and exits; perftop is stopped one interval later. So both profilers see the same
seconds of work, and neither sees the start-up (the child is idle, which neither counts, until
then), nor perftop's registration of the process.

A function's share is its self samples (the innermost Python frame of each sample: py-spy's raw
leaf, perftop's last Python frame before the native leaf and the kernel) over all the process's
samples, by function name and file (py-spy's frames carry the running line, perftop's the first
line). Samples with no Python frame count in the total as "[no Python frame]".

Target (issue 13): the hottest Python functions' shares agree within 5 points.
Run: `.venv/bin/python bench/python_accuracy.py [--seconds 10]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    BENCH,
    PERFTOP,
    PY_SPY,
    ROOT,
    Figure,
    Group,
    add_json_argument,
    child_pids,
    exit_cleanly_on_signals,
    python_interpreters,
    report_figures,
    waiting_for_signal,
)

WORKLOAD = BENCH / "python_work.py"
FREQUENCY = 999
PY_SPY_RATE = 100
TARGET_POINTS = 5.0
HOTTEST = 3  # functions judged: the hottest by py-spy's share
READY_TIMEOUT_S = 180.0  # the BPF compile, on a loaded VM
NO_PYTHON = ("[no Python frame]", "")
# "qualname (file:line)": py-spy's frames and perftop's Python frames alike.
PYTHON_FRAME = re.compile(r"^(?P<name>.+) \((?P<file>[^()]*):(?P<line>\d+)\)$")
WORK_FRAME = ("nest", WORKLOAD.name)  # every sample of the work passes through it
UNKNOWN_CODE = "[unknown Python code]"  # perftop: a code object it could not read

Function = tuple[str, str]  # (qualname, file's basename)


def python_function(frame: str) -> Function | None:
    if frame == UNKNOWN_CODE:
        return (UNKNOWN_CODE, "")
    match = PYTHON_FRAME.match(frame)
    if match is None:
        return None
    return match.group("name"), match.group("file").rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class SelfSamples:
    """One profiler's samples of the child: self counts by innermost Python frame, and how many
    of the samples had no frame of the work (nest) at all."""

    functions: Counter[Function]
    outside_work: int
    dropped: int  # of those, left out of the shares (py-spy's start-up, before perftop ran)

    @property
    def total(self) -> int:
        return sum(self.functions.values())


def folded_self(text: str, drop_outside_work: bool) -> SelfSamples:
    """Self samples by innermost Python frame from folded lines (`frame;frame;... count`).
    perftop's lines start with the comm and go on past the Python frames into native and
    kernel frames; py-spy's raw lines hold Python frames only. With `drop_outside_work`,
    samples with Python frames but none of the work's are left out: py-spy sees the child's
    imports before it waits, perftop does not (it starts later)."""
    counts: Counter[Function] = Counter()
    outside = dropped = 0
    for line in text.splitlines():
        path, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        functions = [python_function(frame) for frame in path.split(";")]
        python = [function for function in functions if function is not None]
        if WORK_FRAME not in python:
            outside += int(count)
            if drop_outside_work and python:
                dropped += int(count)
                continue
        counts[python[-1] if python else NO_PYTHON] += int(count)
    return SelfSamples(counts, outside, dropped)


def shares(counts: Counter[Function]) -> dict[Function, float]:
    total = sum(counts.values()) or 1
    return {function: 100.0 * samples / total for function, samples in counts.items()}


def intervals(recording: Path) -> int:
    try:
        return recording.read_bytes().count(b"\n")
    except OSError:
        return 0


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float, alive: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if alive.poll() is not None:
            raise RuntimeError(f"{what}: {alive.args[0]} exited ({alive.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.05)


def measure(python: Path, seconds: float, workdir: Path) -> tuple[SelfSamples, SelfSamples, str]:
    """(py-spy's samples, perftop's samples, what the child and both profilers said)."""
    raw, folded = workdir / "py-spy.txt", workdir / "perftop.folded"
    recording, log = workdir / "perftop.jsonl", workdir / "py-spy.log"
    for path in (raw, folded, recording):
        path.unlink(missing_ok=True)
    with Group() as group, log.open("wb") as spy_log, folded.open("wb") as folded_out:
        spy = group.start(
            [
                str(PY_SPY),
                "record",
                "--nonblocking",
                "-f",
                "raw",
                "-o",
                str(raw),
                "-r",
                str(PY_SPY_RATE),
                "-d",
                str(int(seconds + READY_TIMEOUT_S + 30)),  # ends when the child does
                "--",
                str(python),
                str(WORKLOAD),
                "--wait",
                str(seconds),
            ],
            stdout=spy_log,
            stderr=subprocess.STDOUT,
        )
        child: list[int] = []

        def child_waiting() -> bool:
            child[:] = [pid for pid in child_pids(spy.pid) if waiting_for_signal(pid)]
            return bool(child)

        wait_until(child_waiting, "py-spy's child waiting for SIGUSR1", 30.0, spy)
        perftop = group.start(
            [
                *PERFTOP,
                "--batch",
                "-d",
                "1",
                "-F",
                str(FREQUENCY),
                "-p",
                str(child[0]),
                "--format",
                "folded",
                "--record",
                str(recording),
            ],
            stdout=folded_out,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        wait_until(lambda: intervals(recording) >= 1, "perftop's first interval", 180.0, perftop)
        os.kill(child[0], signal.SIGUSR1)
        try:
            spy.wait(seconds + 60.0)  # the child works `seconds`, exits, py-spy writes
        except subprocess.TimeoutExpired as error:
            raise RuntimeError("py-spy did not end after its child") from error
        after_exit = intervals(recording)
        wait_until(lambda: intervals(recording) >= after_exit + 2, "perftop", 10.0, perftop)
        group.stop(perftop)  # SIGTERM: perftop writes the folded stacks and leaves
    lines = log.read_text(errors="replace").splitlines()
    closing = " ".join(
        line.strip().removeprefix("py-spy> ")
        for line in lines
        if line.startswith("work:") or "Samples:" in line
    )
    lost: Counter[str] = Counter()
    for line in recording.read_text().splitlines():
        lost.update(json.loads(line).get("lost", {}))
    closing += f"; perftop's lost counters: {dict(+lost) or 'none'}"
    theirs = folded_self(raw.read_text(), drop_outside_work=True)
    return theirs, folded_self(folded.read_text(), drop_outside_work=False), closing.strip()


def label_of(function: Function) -> str:
    name, file = function
    return f"{name} ({file})" if file else name


def compare(label: str, theirs: SelfSamples, ours: SelfSamples, seconds: float) -> Figure:
    """Print one interpreter's table; its figure: the worst difference among the hottest."""
    their_shares, our_shares = shares(theirs.functions), shares(ours.functions)
    ranked = sorted(their_shares, key=lambda function: -their_shares[function])
    hottest = [function for function in ranked if function != NO_PYTHON][:HOTTEST]
    others = [
        function
        for function in sorted(our_shares, key=lambda function: -our_shares[function])
        if function not in hottest
        and (our_shares[function] >= 1.0 or their_shares.get(function, 0.0) >= 1.0)
    ]
    print(f"  {'self (innermost Python frame)':40} {'py-spy %':>9} {'perftop %':>9} {'diff':>6}")
    worst = 0.0
    for function in hottest + others:
        theirs_pct, ours_pct = their_shares.get(function, 0.0), our_shares.get(function, 0.0)
        if function in hottest:
            worst = max(worst, abs(ours_pct - theirs_pct))
        judged = "" if function in hottest else "  (not judged)"
        print(
            f"  {label_of(function)[:40]:40} {theirs_pct:9.2f} {ours_pct:9.2f} "
            f"{ours_pct - theirs_pct:+6.2f}{judged}"
        )
    print(
        f"  samples: py-spy {theirs.total} at {PY_SPY_RATE} Hz ({theirs.dropped} of its "
        f"start-up left out), perftop {ours.total} at {FREQUENCY} Hz; outside the work: "
        f"py-spy {theirs.outside_work}, perftop {ours.outside_work}"
    )
    if hottest:
        # py-spy's few samples are the noisier side: one standard error of its hottest share.
        p = their_shares[hottest[0]] / 100.0
        error = 100.0 * math.sqrt(p * (1.0 - p) / max(theirs.total, 1))
        print(f"  py-spy's sampling error on {hottest[0][0]}: +-{error:.1f} points (1 sigma)")
    met = bool(hottest) and worst <= TARGET_POINTS
    print(
        f"  worst difference among the {len(hottest)} hottest: {worst:.2f} points "
        f"(target <= {TARGET_POINTS:.0f}); {'PASS' if met else 'FAIL'}\n",
        flush=True,
    )
    top = hottest[0] if hottest else NO_PYTHON
    return Figure(
        f"Python self shares vs py-spy, {label}: worst of the hottest {len(hottest)}",
        "points",
        worst,
        peer_name="py-spy record",
        target=f"<= {TARGET_POINTS:.0f}",
        met=met,
        note=f"{seconds:.0f} s of one child; hottest {top[0]}: perftop "
        f"{our_shares.get(top, 0.0):.1f}%, py-spy {their_shares.get(top, 0.0):.1f}%; "
        f"samples: perftop {ours.total} at {FREQUENCY} Hz, py-spy {theirs.total} at "
        f"{PY_SPY_RATE} Hz",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="work per interpreter")
    parser.add_argument("--only", help="comma-separated interpreter labels (default: all)")
    add_json_argument(parser)
    args = parser.parse_args()
    exit_cleanly_on_signals()
    if not PY_SPY.exists():
        print(f"{PY_SPY} is missing: `make setup` installs it (pyproject's dev extras)")
        return 1
    interpreters = python_interpreters()
    if args.only:
        interpreters = {k: v for k, v in interpreters.items() if k in args.only.split(",")}
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, python in interpreters.items():
            if not python.exists():
                print(f"{label}: {python} not installed\n")
                figures.append(Figure(f"Python self shares vs py-spy, {label}", "", None))
                continue
            print(f"{label} ({python}): {args.seconds:.0f} s of bench/{WORKLOAD.name}", flush=True)
            theirs, ours, closing = measure(python, args.seconds, Path(tmp))
            print(f"  {closing}")
            figures.append(compare(label, theirs, ours, args.seconds))
    print("Python accuracy: self share by innermost Python frame, perftop against py-spy")
    return report_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
