"""Write screenshots/*.svg: the screen at 80x24 and 160x48, replaying a recorded session.

    make screenshots
    .venv/bin/python scripts/make_screenshots.py --live-python    # as root: the BPF sampler

Uses tests/data/session.jsonl (a real recording) when it is there, else the synthetic one.

--live-python runs the real sampler instead, on Debian's /usr/bin/python3.11 running a
pure-Python workload (outer -> middle -> inner_spin), in a 120x40 tmux window, and writes what
tmux shows to screenshots/python-frames-120x40.txt: no recording holds Python frames yet.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from perftop.sampling.replay import ReplaySource
from perftop.ui.app import PerftopApp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.ui.conftest import LockstepSource  # noqa: E402  (the tests' pacing, for the same screens)

DATA = ROOT / "tests" / "data"
OUT = ROOT / "screenshots"
SHOTS = {
    "perftop-80x24.svg": ((80, 24), ()),
    "perftop-160x48.svg": ((160, 48), ()),
    "perftop-zoom-80x24.svg": ((80, 24), ("down", "enter", "tab")),
    "perftop-help-80x24.svg": ((80, 24), ("question_mark",)),
}


async def shoot(recording: Path, name: str, size: tuple[int, int], keys: tuple[str, ...]) -> None:
    # Every interval drawn: unpaced, the app skips intervals when behind (by design), and which
    # process is first on top, so selected, changed with the machine's speed.
    source = LockstepSource(ReplaySource(recording, interval_s=0))
    app = PerftopApp(source)  # type: ignore[arg-type]  # a IntervalSource by delegation
    source.app = app
    try:
        async with app.run_test(size=size) as pilot:
            for _ in range(500):  # play the whole recording first
                await pilot.pause(0.02)
                if app.ended:
                    break
            await pilot.press(*keys)
            await pilot.pause(0.2)
            app.save_screenshot(str(OUT / name))
    finally:
        source.close()


PYTHON = Path("/usr/bin/python3.11")
WORKLOAD_FILE = Path("/tmp/perftop-screenshots/pure_python/work.py")
WORKLOAD = """\
import time


def inner_spin(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def helper_sum(n):
    return sum(range(n))


def middle(n):
    return inner_spin(n) + helper_sum(n // 4)


def outer():
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        middle(20000)


outer()
"""
LIVE_SHOTS = {"python-frames-120x40.txt": (120, 40)}
SETTLE_S = 12.0  # the BPF compile (a few seconds), then intervals enough for a steady screen


def tmux(*arguments: str) -> str:
    return subprocess.run(["tmux", *arguments], check=True, capture_output=True, text=True).stdout


def shoot_live(name: str, size: tuple[int, int]) -> None:
    """perftop -p on the workload in a detached tmux window; what the window shows, as text."""
    WORKLOAD_FILE.parent.mkdir(parents=True, exist_ok=True)
    WORKLOAD_FILE.write_text(WORKLOAD)
    workload = subprocess.Popen([str(PYTHON), str(WORKLOAD_FILE)], start_new_session=True)
    session = f"perftop-shot-{os.getpid()}"
    perftop = Path(sys.executable).parent / "perftop"
    try:
        width, height = size
        tmux(
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            str(width),
            "-y",
            str(height),
            f"{perftop} -p {workload.pid}",
        )
        time.sleep(SETTLE_S)
        screen = tmux("capture-pane", "-p", "-t", session)
        (OUT / name).write_text(screen)
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], capture_output=True)
        time.sleep(1.0)  # perftop restores the kernel state as it leaves
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        workload.terminate()
        workload.wait(timeout=5)


def main_live() -> int:
    if os.geteuid() != 0:
        print("--live-python runs the BPF sampler: run it as root", file=sys.stderr)
        return 1
    missing = [str(tool) for tool in (PYTHON, "tmux") if shutil.which(str(tool)) is None]
    if missing:
        print(f"--live-python needs {', '.join(missing)}", file=sys.stderr)
        return 1
    OUT.mkdir(exist_ok=True)
    for name, size in LIVE_SHOTS.items():
        shoot_live(name, size)
        print(f"wrote {OUT / name} from perftop -p on {PYTHON} {WORKLOAD_FILE}")
    return 0


def main() -> int:
    if sys.argv[1:] == ["--live-python"]:
        return main_live()
    recording = DATA / "session.jsonl"
    if not recording.exists():
        recording = DATA / "synthetic.jsonl"
    OUT.mkdir(exist_ok=True)
    for name, (size, keys) in SHOTS.items():
        asyncio.run(shoot(recording, name, size, keys))
        print(f"wrote {OUT / name} from {recording.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
