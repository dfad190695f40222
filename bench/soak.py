"""Memory soak: perftop's RSS and open file descriptors over 10 minutes of process churn and
many distinct stacks; after the warm-up both must stay flat.

Two shell loops spawn /bin/true back to back (here about a thousand short-lived processes a
second, so PIDs wrap around pid_max) while bench/stackgen.c walks 10000 distinct call chains;
`perftop --batch -F 999 --format json -d 1` profiles everything. `perf top -g -F 999` runs
beside it in a tmux pane as the peer (for memory only; they share the CPUs, but the figure is
bytes, not time; `--no-peer` leaves it out). Every 10 s the bench reads perftop's RSS
(/proc/PID/statm) and fd count (/proc/PID/fd), the peer's RSS, and the machine's fork counter.

Figures, over the second half of the run (the first half is warm-up): the RSS slope in KiB per
minute, and the growth in open fds. The slope is Theil-Sen's, the median of the slopes between
every two readings, so that one transient reading does not make the trend: two make bench runs
had a flat series (162.1-162.9 MB) with one dip to 154.7 MB at the window's first reading, which
a least-squares line turned into +139.5 KiB/min (Theil-Sen: -176). The least-squares slope is
printed beside it.
Target: flat, i.e. an RSS slope <= 100 KiB/min (6 MiB an hour) and no fd growth.
Run: `make soak` (10 minutes) or `.venv/bin/python bench/soak.py --minutes 2` (`make bench`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (
    PERFTOP,
    ROOT,
    Figure,
    Group,
    TmuxPane,
    add_json_argument,
    build,
    exit_cleanly_on_signals,
    fd_count,
    report_figures,
    rss_kib,
)
from steady_state import PERF_TOP_READY, wait_until_ready

SLOPE_TARGET_KIB_PER_MIN = 100.0
CHURN = "while :; do /bin/true; done"


def forks() -> int:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("processes "):
            return int(line.split()[1])
    return 0


def slope_per_minute(times: list[float], values: list[float]) -> float:
    """Theil-Sen: the median of the pairwise slopes, per minute."""
    slopes = [
        (values[j] - values[i]) / (times[j] - times[i])
        for i in range(len(times))
        for j in range(i + 1, len(times))
        if times[j] != times[i]
    ]
    return statistics.median(slopes) * 60.0 if slopes else float("nan")


def least_squares_slope_per_minute(times: list[float], values: list[float]) -> float:
    if len(times) < 2:
        return float("nan")
    return statistics.linear_regression(times, values).slope * 60.0


def wait_for_first_report(perftop: subprocess.Popen[bytes], report: Path) -> None:
    """The soak starts once perftop samples, not while it compiles."""
    deadline = time.monotonic() + 180.0  # the BPF compile, on a loaded VM
    while b"\n" not in report.read_bytes():
        if perftop.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"perftop never reported: {report.read_bytes()[-2000:]!r}")
        time.sleep(0.1)


class PeerPane:
    """perf top -g in a tmux pane, or nothing (--no-peer)."""

    def __init__(self, enabled: bool) -> None:
        self.pane = TmuxPane(["perf", "top", "-g", "-F", "999"]) if enabled else None

    def __enter__(self) -> PeerPane:
        if self.pane is not None:
            self.pane.__enter__()
            wait_until_ready(self.pane, PERF_TOP_READY, "perf top -g")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pane is not None:
            self.pane.__exit__(*exc)

    def rss_kib(self) -> float | None:
        if self.pane is None:
            return None
        if not self.pane.alive():
            raise RuntimeError("perf top -g exited during the soak")
        return float(rss_kib(self.pane.pid))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between readings")
    parser.add_argument("--chains", type=int, default=10_000, help="stackgen call chains")
    parser.add_argument("--churn-loops", type=int, default=2, help="shell loops of /bin/true")
    parser.add_argument("--no-peer", action="store_true", help="leave perf top -g out")
    add_json_argument(parser)
    args = parser.parse_args()
    exit_cleanly_on_signals()
    seconds = 60.0 * args.minutes
    times: list[float] = []
    ours: list[float] = []
    fds: list[int] = []
    theirs: list[float] = []
    rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, Group() as group:
        workdir = Path(tmp)
        stackgen = build("stackgen.c", workdir)
        group.start([str(stackgen), str(args.chains), str(int(seconds) + 600)])
        for _ in range(args.churn_loops):
            group.start(["sh", "-c", CHURN])
        report = workdir / "perftop.jsonl"
        with report.open("wb") as sink:
            perftop = group.start(
                [*PERFTOP, "--batch", "-F", "999", "--format", "json", "-d", "1"],
                stdout=sink,
                cwd=ROOT,
            )
        wait_for_first_report(perftop, report)
        with PeerPane(not args.no_peer) as peer:
            print(f"{'s':>6} {'RSS KiB':>10} {'fds':>5} {'peer RSS KiB':>13} {'forks/s':>8}")
            started = time.monotonic()
            forks_before, forks_at = forks(), started
            while (elapsed := time.monotonic() - started) <= seconds:
                if perftop.poll() is not None:
                    raise RuntimeError(f"perftop exited with {perftop.returncode} during the soak")
                times.append(elapsed)
                ours.append(float(rss_kib(perftop.pid)))
                fds.append(fd_count(perftop.pid))
                peer_rss = peer.rss_kib()
                if peer_rss is not None:
                    theirs.append(peer_rss)
                now, forked = time.monotonic(), forks()
                rate = (forked - forks_before) / (now - forks_at) if now > forks_at else 0.0
                forks_before, forks_at = forked, now
                rates.append(rate)
                print(
                    f"{elapsed:>6.0f} {ours[-1]:>10,.0f} {fds[-1]:>5} "
                    f"{peer_rss if peer_rss is not None else float('nan'):>13,.0f} {rate:>8,.0f}",
                    flush=True,
                )
                time.sleep(max(0.0, started + len(times) * args.sample - time.monotonic()))
        reports = report.read_bytes().count(b"\n")
    half = len(times) // 2
    our_slope = slope_per_minute(times[half:], ours[half:])
    our_least_squares = least_squares_slope_per_minute(times[half:], ours[half:])
    their_slope = slope_per_minute(times[half:], theirs[half:]) if theirs else None
    # A leak persists; one fd open at the instant of a reading (a /proc file being read) does
    # not. So: the fewest open among the last three readings, against the start of the half.
    fd_growth = min(fds[-3:]) - fds[half]
    setting = (
        f"{args.minutes:g} min, readings every {args.sample:g} s, second half; /bin/true churn "
        f"({statistics.mean(rates[1:] or [0.0]):,.0f} forks/s) + stackgen {args.chains} chains, "
        f"999 Hz; {reports} reports"
    )
    figures = [
        Figure(
            name="RSS slope after warm-up",
            unit="KiB/min",
            perftop=our_slope,
            peer_name="perf top -g" if theirs else "",
            peer=their_slope,
            target=f"<= {SLOPE_TARGET_KIB_PER_MIN:.0f} KiB/min",
            met=our_slope <= SLOPE_TARGET_KIB_PER_MIN,
            note=f"{setting}; RSS {ours[half]:,.0f} -> {ours[-1]:,.0f} KiB (min "
            f"{min(ours[half:]):,.0f}, max {max(ours[half:]):,.0f}); Theil-Sen slope, "
            f"least squares {our_least_squares:+,.1f} KiB/min",
        ),
        Figure(
            name="open fd growth after warm-up",
            unit="fds",
            perftop=float(fd_growth),
            target="0",
            met=fd_growth <= 0,
            note=f"{fds[half]} -> {fds[-1]} fds",
        ),
    ]
    print(f"\nmemory soak: {setting}")
    return report_figures(figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
