"""The screen's start-up in a real pty, as `perftop` is started: the first complete screen is
the first frame, and the raised priority of the start-up is given back."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perftop.system.boost import STARTUP_NICE
from tests.faults.terminal import PtyProcess

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]
ROOT = Path(__file__).parents[2]
DATA = re.compile(r"(?<![\d,])[1-9][\d,]* samples/s")


def autogroup_nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])


def thread_nices(pid: int) -> set[int]:
    nices = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            nices.add(int(task.joinpath("stat").read_text().rsplit(")", 1)[1].split()[16]))
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
    return nices


def test_first_frame_is_complete_and_the_boost_is_given_back(
    busy_chain: subprocess.Popen[bytes],
) -> None:
    # Its own session, as sshd gives one: its own autogroup, so this test's is not touched.
    terminal = PtyProcess([sys.executable, "-m", "perftop"], cwd=str(ROOT), size=(120, 40))
    try:
        terminal.wait_for(lambda: "Quit" in terminal.text(), 30, "the first screen")
        during = autogroup_nice(terminal.pid), thread_nices(terminal.pid)
        before_keys = terminal.text().split("Quit", 1)[0]
        # One frame, laid out as the rest (the stack pane beside the tables at 120 columns),
        # with the keys: Textual's first frame had neither, and two more came before them.
        assert before_keys.count("Processes") == 1, before_keys
        assert "Call stacks" in before_keys
        terminal.wait_for(lambda: DATA.search(terminal.text()) is not None, 60, "profile data")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and autogroup_nice(terminal.pid) != 0:
            time.sleep(0.1)
        after = autogroup_nice(terminal.pid), thread_nices(terminal.pid)
    finally:
        terminal.close()
    assert during == (STARTUP_NICE, {STARTUP_NICE}), during
    assert after == (0, {0}), after
