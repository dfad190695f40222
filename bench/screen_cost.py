"""The screen alone: perftop replaying a recording of the busy box, against a minimal Line API
Textual app of the same size and number of lines.

A replay has no sampler, no BPF program and no symbolization: what it costs is the UI thread's
per-interval work (tables, call-stack pane, header, cost bar) and Textual's drawing of it. The
recording is made first (`perftop --batch --record FILE`) under benchlib's busy box, the load of
bench/steady_state.py (stackgen with frame pointers, a stripped copy without, Debian's python3.11
running bench/python_work.py), at the frequency given; then the load stops and each program runs
alone in a 120x40 tmux pane with TERM=xterm-256color: `perftop --replay FILE`, which plays the
intervals at their recorded pace, and bench/line_api_peer.py, which rewrites every line of three
panes, a header and a bar each second. CPU is user + system time of the process tree over the
window after a warm-up.

Target: perftop replaying <= 2x the minimal app.
Run: `.venv/bin/python bench/screen_cost.py [--seconds 30]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (
    BENCH,
    BUSY_BOX_LOAD,
    PERFTOP,
    PERFTOP_READY,
    ROOT,
    Figure,
    Group,
    TmuxPane,
    add_json_argument,
    exit_cleanly_on_signals,
    report_figures,
    start_busy_box,
    tree_cpu_seconds,
)

TARGET_RATIO = 2.0
PEER_READY = re.compile(r"some_function_name_")
READY_TIMEOUT_S = 60.0
# The batch recorder's first intervals wait for the BPF compile; these come on top of the window.
RECORDING_MARGIN_S = 15.0


def record(path: Path, frequency_hz: int, seconds: float, chains: int) -> None:
    """`seconds` of intervals of the busy box at `frequency_hz` into `path`."""
    with tempfile.TemporaryDirectory() as tmp, Group() as group:
        start_busy_box(group, Path(tmp), chains)
        time.sleep(1.0)
        argv = [*PERFTOP, "--batch", "-F", str(frequency_hz), "-n", str(int(seconds))]
        recorder = group.start([*argv, "--record", str(path)], cwd=ROOT)
        if recorder.wait() != 0:
            raise RuntimeError(f"perftop --record exited with {recorder.returncode}")


def cpu_percent(
    name: str, argv: list[str], ready: re.Pattern[str], args: argparse.Namespace
) -> float:
    with TmuxPane(argv) as pane:
        started = time.monotonic()
        while not ready.search(pane.screen()):
            if not pane.alive() or time.monotonic() - started > READY_TIMEOUT_S:
                raise RuntimeError(f"{name} showed nothing within {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.1)
        time.sleep(args.warmup)
        cpu_before, started = tree_cpu_seconds(pane.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu_after, ended = tree_cpu_seconds(pane.pid), time.monotonic()
        if not pane.alive():
            raise RuntimeError(f"{name} exited during the measurement (recording too short?)")
    percent = 100.0 * (cpu_after - cpu_before) / (ended - started)
    print(f"{name:<28} {percent:>8.2f}", flush=True)
    return percent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="after the first screen")
    parser.add_argument("--chains", type=int, default=1000, help="stackgen call chains")
    parser.add_argument("--freq", type=int, default=99, help="Hz of the recording")
    parser.add_argument(
        "--recording",
        type=Path,
        metavar="FILE",
        help="replay FILE, made by an earlier run with --keep (its load and Hz, not re-checked)",
    )
    parser.add_argument("--keep", type=Path, metavar="FILE", help="also keep the recording")
    add_json_argument(parser)
    args = parser.parse_args()
    exit_cleanly_on_signals()
    with tempfile.TemporaryDirectory() as tmp:
        recording = args.recording or Path(tmp) / "busy-box.perftop"
        if args.recording is None:
            seconds = args.warmup + args.seconds + RECORDING_MARGIN_S
            record(recording, args.freq, seconds, args.chains)
            if args.keep is not None:
                shutil.copyfile(recording, args.keep)
        print(f"{'program':<28} {'CPU %':>8}")
        ours = cpu_percent(
            "perftop --replay",
            [*PERFTOP, "--replay", str(recording)],
            PERFTOP_READY,
            args,
        )
        peer = cpu_percent(
            "line_api_peer.py",
            [sys.executable, str(BENCH / "line_api_peer.py")],
            PEER_READY,
            args,
        )
    setting = (
        f"{args.seconds:.0f} s after warm-up, tmux 120x40; the recording: {args.freq} Hz, "
        f"{BUSY_BOX_LOAD}, {args.chains} chains"
    )
    figures = [
        Figure(
            name="the screen alone, replaying, TUI",
            unit="% of a CPU",
            perftop=ours,
            peer_name="minimal Line API app",
            peer=peer,
            target=f"ratio <= {TARGET_RATIO:.1f}",
            met=ours <= TARGET_RATIO * peer,
            note=setting,
        )
    ]
    print(f"\nthe screen alone: {setting}")
    return report_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
