"""The annotate view on the real screen with the real sampler, in a real terminal (tmux):
Tab to the functions pane, `a` on the busy C loop, its div and hot source line on screen."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bpf.test_annotate import HOT_C, HOT_LINE

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]
ROOT = Path(__file__).parents[2]


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", "perftop-annotate-test", *args], capture_output=True, text=True
    ).stdout


def wait_for_screen(condition: str, timeout: float = 30) -> str:
    screen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", "live")
        if condition in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{condition!r} never shown:\n{screen}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux missing (make setup installs it)")
def test_annotate_view_live(tmp_path: Path) -> None:
    binary = tmp_path / "hot"
    subprocess.run(["gcc", "-O1", "-g", "-o", str(binary), str(HOT_C)], check=True)
    process = subprocess.Popen([str(binary)])
    command = f"cd {ROOT} && {sys.executable} -m perftop -p {process.pid}"
    tmux("new-session", "-d", "-s", "live", "-x", "120", "-y", "40", command)
    try:
        tmux("resize-window", "-t", "live", "-x", "120", "-y", "40")
        wait_for_screen("[.]  hot")  # the functions pane has it
        tmux("send-keys", "-t", "live", "Tab")
        wait_for_screen("Call stacks: [.] hot")  # focused, the selection followed
        tmux("send-keys", "-t", "live", "a")
        screen = wait_for_screen("div")
        assert "Annotate [.] hot" in screen, screen
        assert f"hot.c:{HOT_LINE}  acc += (acc * 2654435761UL" in screen, screen
        tmux("send-keys", "-t", "live", "Escape")
        screen = wait_for_screen("Functions")
        assert "Annotate [.]" not in screen
        tmux("send-keys", "-t", "live", "q")
    finally:
        tmux("kill-server")
        process.kill()
        process.wait()
