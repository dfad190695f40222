"""Leaving on a signal, and noticing that the terminal went away, so perftop exits instead of
spinning.

Textual installs no SIGHUP or SIGTERM handler: the screen's ExitWatch turns them (and SIGINT)
into an orderly exit with a status, from the event loop.

Textual's input thread treats a read of 0 bytes as "nothing yet" and selects again at once: on
stdin EOF, or a terminal that hung up, it spins at 100% CPU forever. SIGHUP usually arrives
first, but not when it is ignored (nohup) or the terminal vanished another way, so the app also
watches its input for a hang-up: a thread that sleeps in poll(2) until it happens, so that it is
seen at once (a dropped SSH connection must be gone within 2 s) and costs nothing meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import threading
from collections.abc import Callable

GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_NO_TERMINAL = 2
# SIGINT too: a KeyboardInterrupt raised wherever the event loop happens to be can leave the
# screen hung; handled in the loop it leaves like `q` (status 0), the others with 128 + signum.
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


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


class ExitWatch:
    """While the screen runs: EXIT_SIGNALS and a hang-up of `terminal_fd` call `leave` with the
    exit status, in the event loop. `early` are signals that came before it started (run_app
    holds them meanwhile); the first is acted on at once."""

    def __init__(self, terminal_fd: int, leave: Callable[[int], None], early: list[int]) -> None:
        self._terminal_fd = terminal_fd
        self._leave = leave
        self._early = early
        self._watcher: HangupWatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        for signum in EXIT_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)
        for early in self._early[:1]:
            self._on_signal(early)

        def hung_up() -> None:  # already gone: poll(2) says so at once
            try:
                loop.call_soon_threadsafe(self._leave, 128 + signal.SIGHUP)
            except RuntimeError:  # the loop has closed: the app is gone already
                pass

        self._watcher = HangupWatcher(self._terminal_fd, hung_up)
        self._watcher.start()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        if self._loop is not None:
            for signum in EXIT_SIGNALS:
                self._loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        self._leave(EXIT_OK if signum == signal.SIGINT else 128 + signum)
