"""The real screen with the real BPF program, in a real terminal (tmux), finding a busy child."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bpf.conftest import CHAIN_COMM
from tests.bpf.test_lifecycle import loaded_programs

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]
ROOT = Path(__file__).parents[2]


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", "perftop-test", *args], capture_output=True, text=True
    ).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux missing (make setup installs it)")
def test_live_screen_shows_the_busy_child(busy_chain: subprocess.Popen[bytes]) -> None:
    programs = loaded_programs()
    command = f"cd {ROOT} && {sys.executable} -m perftop -p {busy_chain.pid}"
    tmux("new-session", "-d", "-s", "live", "-x", "120", "-y", "40", command)
    try:
        screen = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = tmux("capture-pane", "-p", "-t", "live")
            if CHAIN_COMM in screen and "leaf_spin" in screen:
                break
            time.sleep(0.5)
        assert CHAIN_COMM in screen and str(busy_chain.pid) in screen, screen
        assert "leaf_spin" in screen, screen
        assert "cpu-clock" in screen
        tmux("send-keys", "-t", "live", "q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "live" in tmux("list-sessions"):
            time.sleep(0.2)
        assert "live" not in tmux("list-sessions")
        assert loaded_programs() == programs
    finally:
        tmux("kill-server")
