"""Accuracy against perf: perftop and `perf record -a -g` side by side on the same busy processes.

Three workloads share the two CPUs: a C program with a known chain (user time), dd copying
/dev/zero to /dev/null (kernel time) and a Python loop. Both profilers sample the same seconds at
the same frequency; per-process shares among the workloads must agree within 3 points and the
hottest functions must agree. Prints a table and exits non-zero when a target is missed.

Run: `make bench` (all benchmarks) or `.venv/bin/python bench/accuracy.py [--seconds 10]`.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAIN_SOURCE = ROOT / "tests" / "bpf" / "chain.c"


def start_workloads(workdir: Path, seconds: float) -> list[subprocess.Popen[bytes]]:
    binary = workdir / "perftop_chain"
    subprocess.run(
        ["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(binary), str(CHAIN_SOURCE)], check=True
    )
    loop = "import time\nend = time.time() + %f\nwhile time.time() < end:\n    sum(range(1000))\n"
    return [
        subprocess.Popen([str(binary), str(seconds + 10)]),
        subprocess.Popen(
            ["dd", "if=/dev/zero", "of=/dev/null", "bs=64k"], stderr=subprocess.DEVNULL
        ),
        subprocess.Popen([sys.executable, "-c", loop % (seconds + 10)]),
    ]


def perf_shares(data: Path, pids: list[int]) -> tuple[dict[int, float], list[str]]:
    """Per-pid shares among `pids` and the hottest self symbols, from perf report."""
    pid_list = ",".join(map(str, pids))
    by_pid = subprocess.run(
        [
            "perf",
            "report",
            "-i",
            str(data),
            "--stdio",
            "--no-children",
            "-g",
            "none",
            "--sort",
            "pid",
            "--pid",
            pid_list,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    samples: dict[int, float] = {}
    for match in re.finditer(r"^\s+([\d.]+)%\s+(\d+):", by_pid, re.MULTILINE):
        samples[int(match.group(2))] = float(match.group(1))
    total = sum(samples.values()) or 1.0
    shares = {pid: 100.0 * samples.get(pid, 0.0) / total for pid in pids}
    by_symbol = subprocess.run(
        [
            "perf",
            "report",
            "-i",
            str(data),
            "--stdio",
            "--no-children",
            "-g",
            "none",
            "--sort",
            "sym",
            "--pid",
            pid_list,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    symbols = re.findall(r"^\s+[\d.]+%\s+\[[.k]\]\s+(\S+)", by_symbol, re.MULTILINE)
    return shares, symbols


def normalize(symbol: str) -> str:
    """perf prints an unresolved frame as its file offset (`0x00000000013f786`), perftop as
    `module+0x13f786`: compare the offsets."""
    match = re.fullmatch(r"(?:.*\+)?0x0*([0-9a-f]+)", symbol)
    return f"0x{match.group(1)}" if match else symbol


def perftop_shares(
    report: dict[str, object], pids: list[int]
) -> tuple[dict[int, float], list[str]]:
    processes = {p["pid"]: p["samples"] for p in report["processes"]}  # type: ignore[index, union-attr, attr-defined]
    total = sum(processes.get(pid, 0) for pid in pids) or 1
    shares = {pid: 100.0 * processes.get(pid, 0) / total for pid in pids}
    symbols = [f["symbol"] for f in report["functions"]]  # type: ignore[index, union-attr, attr-defined]
    return shares, symbols


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--freq", type=int, default=99)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        workloads = start_workloads(workdir, args.seconds)
        pids = [w.pid for w in workloads]
        time.sleep(1.0)
        try:
            data = workdir / "perf.data"
            perf = subprocess.Popen(
                [
                    "perf",
                    "record",
                    "-q",
                    "-a",
                    "-g",
                    "-F",
                    str(args.freq),
                    "-o",
                    str(data),
                    "--",
                    "sleep",
                    str(args.seconds),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            perftop = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "perftop",
                    "--batch",
                    "-n",
                    "1",
                    "-d",
                    str(args.seconds),
                    "-F",
                    str(args.freq),
                    "--format",
                    "json",
                    "-p",
                    ",".join(map(str, pids)),
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            perf.wait()
        finally:
            for workload in workloads:
                workload.kill()
                workload.wait()
        report = json.loads(perftop.stdout.splitlines()[-1])
        ours, our_symbols = perftop_shares(report, pids)
        theirs, their_symbols = perf_shares(data, pids)

    names = ["chain (user)", "dd (kernel)", "python loop"]
    print(f"accuracy: {args.seconds:.0f} s at {args.freq} Hz, shares among the workloads")
    print(f"{'workload':<14} {'perftop %':>9} {'perf %':>8} {'diff':>6}")
    worst = 0.0
    for name, pid in zip(names, pids, strict=True):
        diff = abs(ours[pid] - theirs[pid])
        worst = max(worst, diff)
        print(f"{name:<14} {ours[pid]:>9.2f} {theirs[pid]:>8.2f} {diff:>6.2f}")
    print(f"hottest functions: perftop {our_symbols[:5]}")
    print(f"                   perf    {their_symbols[:5]}")
    ours_top = [normalize(symbol) for symbol in our_symbols[:5]]
    theirs_top = [normalize(symbol) for symbol in their_symbols[:5]]
    top_agree = bool(ours_top and theirs_top) and ours_top[0] in theirs_top[:3]
    overlap = len(set(ours_top) & set(theirs_top))
    ok = worst <= 3.0 and top_agree and overlap >= 3
    print(
        f"worst share difference {worst:.2f} points (target <= 3); top-5 overlap {overlap}/5; "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
