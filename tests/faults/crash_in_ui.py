"""perftop with a bug planted in its screen: once the file named by PERFTOP_TEST_CRASH_FLAG
exists and a real profile (one with samples: the BPF program is attached) is on screen, drawing
raises. Run as `python crash_in_ui.py ARGS...` with the arguments of `perftop`."""

from __future__ import annotations

import os
import sys
from typing import Any

from perftop.cli.main import main
from perftop.ui.app import PerftopApp

CRASH_MESSAGE = "planted crash in the screen"
_render_view = PerftopApp._render_view


def _render_then_crash(self: Any) -> None:
    _render_view(self)
    shown = self._shown
    live = shown is not None and shown[0].samples > 0
    if live and os.path.exists(os.environ["PERFTOP_TEST_CRASH_FLAG"]):
        raise RuntimeError(CRASH_MESSAGE)


if __name__ == "__main__":
    PerftopApp._render_view = _render_then_crash  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
