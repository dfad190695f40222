"""A pure-Python workload of known weights, for the benchmarks that profile CPython.

Each round calls hot(7000), warm(2000) and cool(1000): the same loop body, so about 70%, 20% and
10% of the time, plus main's own few checks. With `--wait`, SIGUSR1 is blocked and waited for
before the first round, so the profilers can be attached (and a sample of the waiting thread is
idle to both of them). `--depth N` runs the rounds N calls below main (nest), for a walk of
N more Python frames. Runs the work for SECONDS, prints the CPU time it got, and exits.

Run by bench/python_accuracy.py and bench/python_cost.py under each interpreter on the machine;
it imports nothing outside the standard library and runs on 3.11 to 3.13.
"""

from __future__ import annotations

import argparse
import signal
import time


def hot(n: int) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


def warm(n: int) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


def cool(n: int) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


def rounds(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        hot(7000)
        warm(2000)
        cool(1000)


def nest(depth: int, seconds: float) -> None:
    if depth > 0:
        return nest(depth - 1, seconds)
    return rounds(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("seconds", type=float)
    parser.add_argument("--wait", action="store_true", help="start on SIGUSR1")
    parser.add_argument("--depth", type=int, default=0)
    args = parser.parse_args()
    if args.wait:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        signal.sigwait({signal.SIGUSR1})
    started, cpu = time.monotonic(), time.process_time()
    nest(args.depth, args.seconds)
    # What the profilers should have seen: perftop samples CPU time, py-spy wall time.
    cpu, wall = time.process_time() - cpu, time.monotonic() - started
    print(f"work: {cpu:.2f} s CPU in {wall:.2f} s", flush=True)


if __name__ == "__main__":
    main()
