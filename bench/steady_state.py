"""Steady state on a busy machine: perftop's own CPU against `perf top -g` at the same frequency,
and the bytes it writes to its terminal (the cost of watching over SSH) against `top -d 1` and
`perf top -g`.

Both CPUs are kept busy by three processes with frames of every kind perftop walks (benchlib's
busy box, issue 15): bench/stackgen.c with frame pointers, a stripped copy built without them
(walked by its .eh_frame tables, no symbols), and Debian's python3.11 running the pure-Python
loop of bench/python_work.py (Python frames, the interpreter walked by its tables). Each program
runs alone, one after the other under the same load, in a real terminal: a tmux pane of 120x40
with TERM=xterm-256color. Once it shows data and has warmed up, for 30 s:
- CPU: user + system time of its whole process tree (children included) from /proc/PID/stat;
- traffic: everything it writes to its terminal, copied by `tmux pipe-pane -O` into a file.
perftop and perf top -g run at 99 Hz and at 999 Hz; the traffic figure is at 99 Hz, perftop's
default.

In the same run and under the same load, bench/line_api_peer.py (a minimal Textual app drawn
through the Line API, laid out like perftop's screen at 120x40, rewriting a quarter of its lines
each second, `--changed`) is measured the same way: what Textual alone costs to keep such a
screen live, with no sampling, draining or symbolizing. It is reported beside perf top -g at
each frequency, so a target under that floor shows as such in the same run.

Targets: perftop's CPU <= perf top -g's at each frequency (ratio <= 1.0); perftop's bytes per
second <= top's.
Run: `.venv/bin/python bench/steady_state.py [--seconds 30]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    BENCH,
    BUSY_BOX_LOAD,
    PERFTOP,
    PERFTOP_READY,
    Figure,
    Group,
    TmuxPane,
    add_json_argument,
    exit_cleanly_on_signals,
    report_figures,
    start_busy_box,
    tree_cpu_seconds,
)

PERF_TOP_READY = re.compile(r"Samples: +[1-9]")
TOP_READY = re.compile(r"^top - ", re.MULTILINE)
FLOOR_READY = re.compile(r"some_function_name_")  # bench/line_api_peer.py's rows
FLOOR_ARGV = [
    sys.executable,
    str(BENCH / "line_api_peer.py"),
    "--changed",
]
# The first profile waits for the BPF compile, which a loaded 2-CPU VM has stretched past a minute.
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True, slots=True)
class Steady:
    cpu_percent: float  # of one CPU
    bytes_per_second: float


def wait_until_ready(pane: TmuxPane, ready: re.Pattern[str], name: str) -> float:
    """Seconds until `ready` is on the screen; raises when the program dies or never gets there."""
    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT_S:
        if not pane.alive():
            raise RuntimeError(f"{name} exited before showing data")
        if ready.search(pane.screen()):
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"{name} showed no data within {READY_TIMEOUT_S:.0f} s:\n{pane.screen()}")


def measure(
    name: str, argv: list[str], ready: re.Pattern[str], workdir: Path, args: argparse.Namespace
) -> Steady:
    """CPU and terminal bytes over the window; measured again once if the screen froze."""
    for attempt in (1, 2):
        steady, frozen = _measure_once(name, argv, ready, workdir, args)
        if frozen is None:
            print(
                f"{name:<22} {steady.cpu_percent:>8.2f} {steady.bytes_per_second:>12,.0f}",
                flush=True,
            )
            return steady
        print(f"{name}: the screen did not change in {args.seconds:.0f} s (attempt {attempt}):")
        print(frozen)
    raise RuntimeError(f"{name} froze twice; its figures would not be steady-state figures")


def _measure_once(
    name: str, argv: list[str], ready: re.Pattern[str], workdir: Path, args: argparse.Namespace
) -> tuple[Steady, str | None]:
    """(the figures, None) or, when the screen was the same at both ends of the window (perf top
    has been seen stuck behind a dialog), (the figures, that screen)."""
    capture = workdir / "terminal.out"
    capture.unlink(missing_ok=True)
    with TmuxPane(argv) as pane:
        wait_until_ready(pane, ready, name)
        time.sleep(args.warmup)
        pane.pipe_to(capture)
        screen_before = pane.screen()
        cpu_before, started = tree_cpu_seconds(pane.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu_after, ended = tree_cpu_seconds(pane.pid), time.monotonic()
        screen_after = pane.screen()
        pane.stop_piping()
        if not pane.alive():
            raise RuntimeError(f"{name} exited during the measurement")
    time.sleep(0.2)  # the pipe's cat writes out what it still holds
    written = capture.stat().st_size if capture.exists() else 0
    seconds = ended - started
    steady = Steady(100.0 * (cpu_after - cpu_before) / seconds, written / seconds)
    return steady, screen_after if screen_after == screen_before else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured steady state")
    parser.add_argument("--warmup", type=float, default=3.0, help="after the first data")
    parser.add_argument("--chains", type=int, default=1000, help="stackgen call chains")
    parser.add_argument("--freqs", default="99,999", help="comma-separated Hz; the first: traffic")
    add_json_argument(parser)
    args = parser.parse_args()
    exit_cleanly_on_signals()
    frequencies = [int(hz) for hz in args.freqs.split(",")]
    ours: dict[int, Steady] = {}
    theirs: dict[int, Steady] = {}
    with tempfile.TemporaryDirectory() as tmp, Group() as group:
        workdir = Path(tmp)
        start_busy_box(group, workdir, args.chains)
        time.sleep(1.0)
        print(f"{'program':<22} {'CPU %':>8} {'bytes/s':>12}")
        for hz in frequencies:
            ours[hz] = measure(
                f"perftop -F {hz}", [*PERFTOP, "-F", str(hz)], PERFTOP_READY, workdir, args
            )
            argv = ["perf", "top", "-g", "-F", str(hz)]
            theirs[hz] = measure(f"perf top -g -F {hz}", argv, PERF_TOP_READY, workdir, args)
        top = measure("top -d 1", ["top", "-d", "1"], TOP_READY, workdir, args)
        floor = measure("line_api_peer.py", FLOOR_ARGV, FLOOR_READY, workdir, args)
    setting = (
        f"{args.seconds:.0f} s after warm-up, 2 CPUs busy ({BUSY_BOX_LOAD}, {args.chains} "
        "chains), tmux 120x40"
    )
    figures = [
        Figure(
            name=f"own CPU at {hz} Hz, TUI",
            unit="% of a CPU",
            perftop=ours[hz].cpu_percent,
            peer_name="perf top -g",
            peer=theirs[hz].cpu_percent,
            target="ratio <= 1.0",
            met=ours[hz].cpu_percent <= theirs[hz].cpu_percent,
            note=setting,
        )
        for hz in frequencies
    ]
    figures += [
        Figure(
            name=f"Textual floor beside perf top -g at {hz} Hz",
            unit="% of a CPU",
            perftop=floor.cpu_percent,
            peer_name="perf top -g",
            peer=theirs[hz].cpu_percent,
            note=f"{setting}; bench/line_api_peer.py --changed (no sampling: Textual drawing a "
            f"screen of perftop's layout, a quarter of its lines new each second); perftop at "
            f"{hz} Hz {ours[hz].cpu_percent:.2f}%, {ours[hz].cpu_percent - floor.cpu_percent:+.2f} "
            "points above this floor",
        )
        for hz in frequencies
    ]
    hz = frequencies[0]
    figures += [
        Figure(
            name=f"terminal traffic at {hz} Hz",
            unit="bytes/s",
            perftop=ours[hz].bytes_per_second,
            peer_name="top -d 1",
            peer=top.bytes_per_second,
            target="<= top's",
            met=ours[hz].bytes_per_second <= top.bytes_per_second,
            note=setting + ", TERM=xterm-256color",
        ),
        Figure(
            name=f"terminal traffic at {hz} Hz",
            unit="bytes/s",
            perftop=ours[hz].bytes_per_second,
            peer_name="perf top -g",
            peer=theirs[hz].bytes_per_second,
            note=setting + ", TERM=xterm-256color",
        ),
    ]
    print(f"\nsteady state: {setting}")
    return report_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
