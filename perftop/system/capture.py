"""Capture what C libraries write straight to file descriptors 1 and 2.

libbcc prints "Unable to find kernel headers" to fd 1 and perror() text to fd 2. Left alone that
text corrupts `--format json` output and the TUI (which draws on fd 2), so compile and attach run
inside `captured_fds()` and the text becomes part of perftop's own error message.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


class Captured:
    text: str = ""

    def summary(self, limit: int = 300) -> str:
        """The captured text as one line, for an error message."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        joined = " | ".join(lines)
        return joined if len(joined) <= limit else joined[: limit - 1] + "…"


@contextmanager
def captured_fds() -> Iterator[Captured]:
    captured = Captured()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")
