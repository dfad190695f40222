"""Give the terminal to the screen alone while C code keeps writing to fds 1 and 2.

Textual draws on `sys.__stderr__`; libbcc prints to fds 1 and 2 whenever it likes (clang
warnings during the compile that now runs beside the screen, perror() on an attach). While the
screen runs, the terminal is reached only through duplicates of the original fds, and fds 1 and 2
point at a private temporary file; afterwards everything is put back.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def terminal_for_screen_only() -> Iterator[TextIO]:
    """Yields a stream of what C code wrote meanwhile (read it after the block)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal_out = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="replace")
    terminal_err = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace")
    previous = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    # Closed by the caller once read (or by the garbage collector).
    sink = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
    try:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        sys.stdout = sys.__stdout__ = terminal_out  # type: ignore[misc]
        sys.stderr = sys.__stderr__ = terminal_err  # type: ignore[misc]
        yield sink
    finally:
        for stream in (terminal_out, terminal_err):
            try:
                stream.flush()
            except OSError:
                pass
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = previous  # type: ignore[misc]
        terminal_out.close()
        terminal_err.close()
        sink.seek(0)
