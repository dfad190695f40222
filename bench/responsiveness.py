"""The screen stays responsive while the per-interval work runs: keypress to repaint under a
high-stack-count load, against the same screen under a light load.

bench/stackgen.c walks many distinct call chains on the last CPU; the other CPU is left to
perftop (as in bench/interval_work.py). A short batch run first reports how many distinct stacks
one interval holds and how long its drain + symbolize + aggregate takes. Then the TUI runs on a
120x40 pty the bench reads itself; once it shows profile data it gets `r` (reverse the sort of
the processes table) at random moments, so some presses land while an interval is being drained,
and the time from the keypress to the first byte of the sort marker's new direction (SAMPLES▲
or SAMPLES▼, which no periodic refresh can paint) is the latency.

Then the busy box of bench/steady_state.py (stackgen with frame pointers, a stripped copy without
them, Debian's python3.11 in a pure-Python loop: both CPUs busy) at perftop's default 99 Hz, as a
new user tries it: Enter on the hottest process (zoom), Tab to its functions, then Down through
them (six at a time from the top). Each press selects another function, whose stacks the
call-stack pane then shows under its name (at 200x50, the pane beside the tables): the latency
is from the keypress to the first byte of the pane's new title (which nothing but a new
selection rewrites), so it covers the cursor's move, the stack tree's build and the paint.

In every run perftop logs its garbage collections (PERFTOP_GC_LOG, perftop.ui.collector_log):
a collection holds the GIL, so the longest is the longest pause of the UI thread it caused.

Targets: every keypress repainted within 100 ms under the heavy load, and on the busy box; no
collection over 50 ms.
Run: `.venv/bin/python bench/responsiveness.py [--presses 10]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    BUSY_BOX_LOAD,
    PERFTOP,
    ROOT,
    Figure,
    Group,
    PtyProcess,
    add_json_argument,
    build,
    exit_cleanly_on_signals,
    median,
    report_figures,
    start_busy_box,
)
from startup import PERFTOP_MARKERS

from perftop.viewmodel import DEFAULT_PROCESS_SORT, PROCESS_COLUMNS
from perftop.viewmodel.tables import column_by_id

TARGET_MS = 100.0
PAUSE_TARGET_MS = 50.0
# A heavy load on a shared 2-CPU VM has been seen to take over a minute to the first profile.
FIRST_DATA_TIMEOUT_S = 180.0
PRESS_TIMEOUT_S = 30.0
LAST_CPU = str((os.cpu_count() or 1) - 1)


@dataclass(frozen=True, slots=True)
class Load:
    name: str
    chains: int
    frequency_hz: int


HEAVY = Load("heavy", 16_500, 20_000)
LIGHT = Load("light", 10, 99)
BUSY_BOX_HZ = 99
BUSY_BOX_CHAINS = 1000
# The busy-box part runs at 200x50, where the call-stack pane sits right of the tables (3/5 of
# the width, perftop.tcss): its title is on the body's first line, under the zoomed header's two
# lines; a write there from column 121 on. (At 120x40 the panes are stacked and the title's line
# follows the processes pane's rows; perftop writes only the changed cells, so the title cannot
# be found by its text either.)
ZOOMED_SIZE = (200, 50)
STACK_TITLE_WRITE = rb"\x1b\[3;(?:12[1-9]|1[3-9]\d|200)H"
SWEEP = 6  # Down this many times from the top, then Home: each press selects another function


def sort_markers() -> tuple[bytes, bytes]:
    """The default sort column's title as painted before and after one `r`."""
    column = column_by_id(PROCESS_COLUMNS, DEFAULT_PROCESS_SORT)
    arrows = ("▼", "▲") if column.descending else ("▲", "▼")
    return (column.title + arrows[0]).encode(), (column.title + arrows[1]).encode()


def interval_work(pid: int, load: Load) -> tuple[int, float]:
    """(distinct stacks, drain ms) of one steady interval of perftop filtered to `pid`."""
    argv = [*PERFTOP, "--batch", "--format", "json", "-n", "3", "-F", str(load.frequency_hz)]
    done = subprocess.run(
        [*argv, "-p", str(pid)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    costs = [json.loads(line)["cost"] for line in done.stdout.splitlines()[1:]]
    return (
        int(median([cost["counts_map_used"] for cost in costs])),
        median([cost["drain_ms"] for cost in costs]),
    )


@dataclass(frozen=True, slots=True)
class Collections:
    """The longest garbage collections perftop logged (PERFTOP_GC_LOG), in ms."""

    cpu_ms: float  # the collector's own work: the most CPU time one collection took
    wall_ms: float  # the longest one on the clock, preemption by the load included
    full_cpu_ms: float  # the most CPU time of a full (generation 2) collection


def worst_collections(log: Path) -> Collections:
    rows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return Collections(
        cpu_ms=max((float(row[2]) for row in rows), default=0.0),
        wall_ms=max((float(row[1]) for row in rows), default=0.0),
        full_cpu_ms=max((float(row[2]) for row in rows if row[0] == "2"), default=0.0),
    )


def keypress_latencies(load: Load, presses: int, seed: int, gc_log: Path) -> list[float]:
    """Milliseconds from each `r` to the repaint of the sort marker."""
    markers = sort_markers()
    pacing = random.Random(seed)
    latencies = []
    # Full repaints: with perftop's terminal diff, `r` sends only the arrow cell that flips,
    # and the marker is then never in the bytes whole. Latency is the event loop's; the diff
    # only makes the output smaller, so this measures the slower case.
    argv = [
        "env",
        "PERFTOP_FULL_REPAINT=1",
        f"PERFTOP_GC_LOG={gc_log}",
        *PERFTOP,
        "-F",
        str(load.frequency_hz),
    ]
    with PtyProcess(argv) as terminal:
        if terminal.wait_for(PERFTOP_MARKERS[1], timeout=FIRST_DATA_TIMEOUT_S) is None:
            raise RuntimeError(f"no profile data: {terminal.output()[-2000:]!r}")
        time.sleep(2.0)  # past the first intervals, which read the ELF files
        for press in range(presses):
            time.sleep(pacing.uniform(0.3, 1.1))
            since = terminal.mark()
            sent = terminal.send(b"r")
            painted = terminal.wait_for(
                markers[(press + 1) % 2], since=since, timeout=PRESS_TIMEOUT_S
            )
            if painted is None:
                raise RuntimeError(f"press {press + 1} not repainted in {PRESS_TIMEOUT_S:.0f} s")
            latencies.append(1000.0 * (painted - sent))
    return latencies


def zoomed_down_latencies(presses: int, seed: int, gc_log: Path) -> list[float]:
    """Milliseconds from each Down (or Up) in the zoomed functions pane to the first byte of
    the call-stack pane's new title, at 99 Hz on the busy box; perftop's own diffed output, as a
    user's terminal gets it."""
    pacing = random.Random(seed)
    latencies = []
    argv = ["env", f"PERFTOP_GC_LOG={gc_log}", *PERFTOP, "-F", str(BUSY_BOX_HZ)]
    with PtyProcess(argv, cols=ZOOMED_SIZE[0], rows=ZOOMED_SIZE[1]) as terminal:
        if terminal.wait_for(PERFTOP_MARKERS[1], timeout=FIRST_DATA_TIMEOUT_S) is None:
            raise RuntimeError(f"no profile data: {terminal.output()[-2000:]!r}")
        time.sleep(2.0)
        terminal.send(b"\r")  # zoom into the hottest process
        time.sleep(1.5)
        terminal.send(b"\t")  # to its functions
        time.sleep(1.5)
        for press in range(presses):
            if press and press % SWEEP == 0:
                # Back to the top, unmeasured. Every measured press is a Down from there: an Up
                # after the cursor went back to the top on its own (the selected function left
                # the list) would select nothing new and paint no title.
                terminal.send(b"\x1b[H")
                time.sleep(1.5)
            time.sleep(pacing.uniform(0.3, 1.1))
            since = terminal.mark()
            sent = terminal.send(b"\x1b[B")
            painted = terminal.wait_for(STACK_TITLE_WRITE, since=since, timeout=PRESS_TIMEOUT_S)
            if painted is None:
                raise RuntimeError(
                    f"press {press + 1}: no new call-stack title in {PRESS_TIMEOUT_S:.0f} s"
                )
            latencies.append(1000.0 * (painted - sent))
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--presses", type=int, default=10, help="keypresses per load")
    parser.add_argument(
        "--zoomed-presses", type=int, default=24, help="Down presses on the busy box"
    )
    parser.add_argument("--seed", type=int, default=6, help="for the random press times")
    add_json_argument(parser)
    args = parser.parse_args()
    exit_cleanly_on_signals()
    results: dict[str, tuple[int, float, list[float]]] = {}
    pauses: dict[str, Collections] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        stackgen = build("stackgen.c", workdir)
        for load in (HEAVY, LIGHT):
            with Group() as group:
                worker = group.start(
                    ["taskset", "-c", LAST_CPU, str(stackgen), str(load.chains), "3600"]
                )
                time.sleep(1.0)
                stacks, drain_ms = interval_work(worker.pid, load)
                gc_log = workdir / f"gc-{load.name}.log"
                latencies = keypress_latencies(load, args.presses, args.seed, gc_log)
                group.stop(worker)
            results[load.name] = (stacks, drain_ms, latencies)
            pauses[load.name] = worst_collections(gc_log)
            print(
                f"{load.name}: stackgen {load.chains} chains at {load.frequency_hz} Hz, "
                f"{stacks} distinct stacks per interval, drain {drain_ms:.0f} ms; keypress to "
                f"repaint median {median(latencies):.0f} ms, max {max(latencies):.0f} ms "
                f"({' '.join(f'{value:.0f}' for value in latencies)}); longest collection "
                f"{pauses[load.name].cpu_ms:.0f} ms CPU ({pauses[load.name].wall_ms:.0f} ms wall)",
                flush=True,
            )
        with Group() as group:
            start_busy_box(group, workdir, BUSY_BOX_CHAINS)
            time.sleep(1.0)
            gc_log = workdir / "gc-busy-box.log"
            zoomed = zoomed_down_latencies(args.zoomed_presses, args.seed, gc_log)
        pauses["busy box"] = worst_collections(gc_log)
        print(
            f"busy box at {BUSY_BOX_HZ} Hz, Down in the zoomed functions pane: median "
            f"{median(zoomed):.0f} ms, max {max(zoomed):.0f} ms "
            f"({' '.join(f'{value:.0f}' for value in zoomed)}); longest collection "
            f"{pauses['busy box'].cpu_ms:.0f} ms CPU ({pauses['busy box'].wall_ms:.0f} ms wall)",
            flush=True,
        )
    heavy, light = results["heavy"], results["light"]
    figures = [
        Figure(
            name="keypress to repaint, worst, while draining",
            unit="ms",
            perftop=max(heavy[2]),
            peer_name="same, light load",
            peer=max(light[2]),
            target=f"<= {TARGET_MS:.0f} ms",
            met=max(heavy[2]) <= TARGET_MS,
            note=f"{args.presses} presses; {heavy[0]} distinct stacks per interval "
            f"({HEAVY.chains} chains at {HEAVY.frequency_hz} Hz), drain {heavy[1]:.0f} ms",
        ),
        Figure(
            name="keypress to repaint, median, while draining",
            unit="ms",
            perftop=median(heavy[2]),
            peer_name="same, light load",
            peer=median(light[2]),
            note=f"light load: {light[0]} distinct stacks ({LIGHT.chains} chains at "
            f"{LIGHT.frequency_hz} Hz)",
        ),
    ]
    figures += [
        Figure(
            name=f"Down in a zoomed functions pane, worst, busy box at {BUSY_BOX_HZ} Hz",
            unit="ms",
            perftop=max(zoomed),
            peer_name="r, light load",
            peer=max(light[2]),
            target=f"<= {TARGET_MS:.0f} ms",
            met=max(zoomed) <= TARGET_MS,
            note=f"{args.zoomed_presses} presses, to the call-stack pane's new title, "
            f"pty {ZOOMED_SIZE[0]}x{ZOOMED_SIZE[1]}; "
            f"{BUSY_BOX_LOAD}, {BUSY_BOX_CHAINS} chains; median {median(zoomed):.0f} ms",
        ),
        *(
            Figure(
                name=f"longest garbage collection (GIL held), {name}",
                unit="ms CPU",
                perftop=pauses[name].cpu_ms,
                peer_name="same, light load",
                peer=pauses["light"].cpu_ms,
                target=f"<= {PAUSE_TARGET_MS:.0f} ms",
                met=pauses[name].cpu_ms <= PAUSE_TARGET_MS,
                note=f"PERFTOP_GC_LOG over the presses; the collecting thread's CPU time "
                f"(wall, preemption by the load included: {pauses[name].wall_ms:.0f} ms); "
                f"longest full collection {pauses[name].full_cpu_ms:.0f} ms CPU",
            )
            for name in ("heavy", "busy box")
        ),
    ]
    print("\nkeypress to repaint, TUI on a 120x40 pty, generator on one CPU; then the busy box")
    return report_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
