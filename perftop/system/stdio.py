"""File descriptors 1 and 2, taken from C code that writes to them at will.

libbcc prints "Unable to find kernel headers" to fd 1 and perror() text to fd 2, and clang
warns there during a compile. Left alone, that text corrupts `--format json` output and the
TUI (which draws on fd 2). Two ways of taking the fds, one redirection under both:

- `captured_fds()` around a compile or an attach: the text becomes part of perftop's own
  error message.
- `terminal_for_screen_only()` while the screen runs: the terminal is reached only through
  duplicates of the original fds, and fds 1 and 2 point at a private temporary file.

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
from typing import IO, TextIO


@contextmanager
def _fds_redirected_to(sink: IO[str] | IO[bytes]) -> Iterator[None]:
    """fds 1 and 2 point at `sink` inside the block, and at what they were after it."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a stream already closed, or its terminal gone
            pass
    saved_out, saved_err = os.dup(1), os.dup(2)
    try:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)


# Capturing what C code says --------------------------------------------------------------


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
    with tempfile.TemporaryFile() as sink:
        try:
            with _fds_redirected_to(sink):
                yield captured
        finally:
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")


# The terminal for the screen alone -------------------------------------------------------


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
    terminal_out, terminal_err = terminal_stream(1), terminal_stream(2)
    previous = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    # Closed by the caller once read (or by the garbage collector).
    sink = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
    try:
        with _fds_redirected_to(sink):
            sys.stdout = sys.__stdout__ = terminal_out  # type: ignore[misc]
            sys.stderr = sys.__stderr__ = terminal_err  # type: ignore[misc]
            try:
                yield sink
            finally:
                for stream in (terminal_out, terminal_err):
                    stream.flush()
    finally:
        sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__ = previous  # type: ignore[misc]
        terminal_out.close()
        terminal_err.close()
        sink.seek(0)
