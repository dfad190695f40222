"""Every way out detaches every probe: the BPF programs and perf events loaded before perftop
starts are exactly those left after it exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]


def loaded_programs() -> set[int]:
    out = subprocess.run(
        ["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True
    )
    return {prog["id"] for prog in json.loads(out.stdout or "[]")}


def perf_event_fds() -> int:
    """perf event fds held by any process (anon_inode:[perf_event])."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[perf_event]":
                    count += 1
        except OSError:
            continue
    return count


def start_batch(*args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "perftop", "--batch", "--format", "json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # sampling is running once an interval is out
    assert first.startswith("{"), process.stderr.read() if process.stderr else ""
    return process


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_detaches_everything(signum: int) -> None:
    programs, perf_fds = loaded_programs(), perf_event_fds()
    process = start_batch("-d", "0.5")
    assert loaded_programs() - programs  # our program is loaded while it runs
    process.send_signal(signum)
    started = time.monotonic()
    assert process.wait(timeout=5) == 0
    assert time.monotonic() - started < 2
    assert process.stderr is not None and "Traceback" not in process.stderr.read()
    assert loaded_programs() == programs
    assert perf_event_fds() == perf_fds


def test_folded_written_on_sigterm(tmp_path: Path, busy_chain: subprocess.Popen[bytes]) -> None:
    # Something busy to sample: perftop attaches only once its own start-up work is done, so
    # on an idle machine it has nothing but idle samples to write.
    out = tmp_path / "out.folded"
    programs = loaded_programs()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perftop",
            "--batch",
            "--format",
            "folded",
            "-d",
            "0.5",
            "-o",
            str(out),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not loaded_programs() - programs and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # attached: let a few intervals of samples come in
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=5) == 0
    lines = out.read_text().splitlines()
    assert lines and all(line.rsplit(" ", 1)[1].isdigit() for line in lines)
