"""Noticing that the terminal went away, so perftop exits instead of spinning.

Textual's input thread treats a read of 0 bytes as "nothing yet" and selects again at once: on
stdin EOF, or a terminal that hung up, it spins at 100% CPU forever. SIGHUP usually arrives
first, but not when it is ignored (nohup) or the terminal vanished another way, so the app also
watches its input for a hang-up: a thread that sleeps in poll(2) until it happens, so that it is
seen at once (a dropped SSH connection must be gone within 2 s) and costs nothing meanwhile.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable

GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


def terminal_gone(fd: int) -> bool:
    """True when `fd` is no longer a usable terminal: hung up, closed, or never a tty."""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)  # POLLHUP, POLLERR and POLLNVAL are always reported
        ready = poller.poll(0)
    except (OSError, ValueError):
        return True
    if any(mask & GONE for _, mask in ready):
        return True
    return not os.isatty(fd)


class HangupWatcher:
    """Calls `on_gone`, from its own thread and once, when `fd` hangs up, fails or is closed."""

    def __init__(self, fd: int, on_gone: Callable[[], None]) -> None:
        self._fd = fd
        self._on_gone = on_gone
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="hangup-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread without calling `on_gone` (if it has not yet); waits for it briefly."""
        if self._wake_write < 0:
            return
        os.write(self._wake_write, b"x")
        self._thread.join(timeout=1.0)
        if not self._thread.is_alive():  # else it would poll a closed (or reused) fd
            os.close(self._wake_read)
        os.close(self._wake_write)
        self._wake_write = -1

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, 0)  # only what is always reported: POLLHUP, POLLERR, POLLNVAL
        poller.register(self._wake_read, select.POLLIN)
        while True:
            for fd, mask in poller.poll():
                if fd == self._wake_read:
                    return
                if mask & GONE:
                    self._on_gone()
                    return
