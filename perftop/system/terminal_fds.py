"""Give the terminal to the screen alone while C code keeps writing to fds 1 and 2.

Textual draws on `sys.__stderr__`; libbcc prints to fds 1 and 2 whenever it likes (clang
warnings during the compile that now runs beside the screen, perror() on an attach). While the
screen runs, the terminal is reached only through duplicates of the original fds, and fds 1 and 2
point at a private temporary file; afterwards everything is put back.

Those duplicates stop writing once the terminal has hung up (the SSH connection dropped):
Textual's output thread dies on the first write error, after which the screen's next 30 writes
fill its queue and the app's shutdown blocks on the 31st for good (seen as a 1.2 s hang-up exit
that only perftop's os._exit deadline ended).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class TerminalStream(io.TextIOWrapper):
    """A text stream to a terminal that drops what is written after the terminal went away
    (EIO on a hung-up tty, EPIPE), instead of raising it at whoever writes or flushes."""

    gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return super().write(text)
            except OSError:
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                super().flush()
            except OSError:
                self.gone = True

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the buffered rest could not be written
            self.gone = True


def terminal_stream(fd: int) -> TerminalStream:
    """A TerminalStream on a duplicate of `fd` (which stays open)."""
    return TerminalStream(
        io.BufferedWriter(io.FileIO(os.dup(fd), "w")), encoding="utf-8", errors="replace"
    )


@contextmanager
def terminal_for_screen_only() -> Iterator[TextIO]:
    """Yields a stream of what C code wrote meanwhile (read it after the block)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal_out, terminal_err = terminal_stream(1), terminal_stream(2)
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
            stream.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = previous  # type: ignore[misc]
        terminal_out.close()
        terminal_err.close()
        sink.seek(0)
