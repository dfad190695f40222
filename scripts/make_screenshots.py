"""Write screenshots/*.svg: the screen at 80x24 and 160x48, replaying a recorded session.

    make screenshots

Uses tests/data/session.jsonl (a real recording) when it is there, else the synthetic one.
"""

from __future__ import annotations

import asyncio
import sys
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


def main() -> int:
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
