"""perftop's screen in a real pseudo-terminal: start it as a session leader with the pty as its
controlling terminal (as sshd does), read everything it draws, and check what it leaves behind.

`close_terminal` is the SSH connection dropping: the kernel hangs the terminal up, sends SIGHUP
to the session and every read of the terminal returns EOF from then on.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence

# DEC private modes a full-screen app may switch on, and the state a shell expects back.
MODES_RESTORED = {
    "1049": "l",  # alternate screen
    "1000": "l",  # mouse reporting...
    "1002": "l",
    "1003": "l",
    "1006": "l",
    "1015": "l",
    "1016": "l",
    "1004": "l",  # focus events
    "2004": "l",  # bracketed paste
    "2048": "l",  # in-band resize
    "25": "h",  # cursor shown
    "7": "h",  # line wrap
}
_MODE = re.compile(rb"\x1b\[\?([\d;]+)([hl])")
_KITTY_PUSH = re.compile(rb"\x1b\[>\d+u")
_KITTY_POP = re.compile(rb"\x1b\[<\d*u")


class PtyProcess:
    """A command whose stdin, stdout and stderr are one pty, read continuously."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        size: tuple[int, int] = (120, 40),
        block_sighup: bool = False,
    ) -> None:
        self.master, self.follower = os.openpty()
        columns, rows = size
        fcntl.ioctl(self.follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.termios_before = termios.tcgetattr(self.follower)
        self._output = bytearray()
        self._lock = threading.Lock()

        def become_terminal_owner() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            if block_sighup:
                # Like a hang-up that sends no signal (or one that cannot be delivered): only
                # the terminal itself says it is gone.
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})

        self.process = subprocess.Popen(
            list(argv),
            stdin=self.follower,
            stdout=self.follower,
            stderr=self.follower,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=become_terminal_owner,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._output += data

    def output(self) -> bytes:
        with self._lock:
            return bytes(self._output)

    def text(self) -> str:
        return self.output().decode("utf-8", errors="replace")

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        if not condition():
            tail = self.text()[-3000:]
            raise AssertionError(f"timed out waiting for {what}; output tail: {tail!r}")

    def close_terminal(self) -> None:
        """The terminal emulator (or sshd) goes away."""
        os.close(self.master)
        self.master = -1
        os.close(self.follower)
        self.follower = -1

    def termios_now(self) -> list[object]:
        return termios.tcgetattr(self.follower)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def close(self) -> None:
        self.kill()
        for fd in (self.master, self.follower):
            if fd >= 0:
                os.close(fd)
        self.master = self.follower = -1
        self._reader.join(timeout=2)


def terminal_modes_left(output: bytes) -> dict[str, str]:
    """Each DEC private mode the output touched -> its state at the end ("h" or "l")."""
    state: dict[str, str] = {}
    for match in _MODE.finditer(output):
        for mode in match.group(1).decode().split(";"):
            state[mode] = match.group(2).decode()
    return state


def unrestored_modes(output: bytes) -> dict[str, str]:
    """Modes left different from what the shell expects, and unpopped kitty keyboard pushes."""
    left = terminal_modes_left(output)
    wrong = {
        mode: state
        for mode, state in left.items()
        if mode in MODES_RESTORED and state != MODES_RESTORED[mode]
    }
    pushes, pops = len(_KITTY_PUSH.findall(output)), len(_KITTY_POP.findall(output))
    if pushes > pops:
        wrong["kitty keyboard"] = f"{pushes} pushed, {pops} popped"
    return wrong


def session_processes(session_id: int) -> list[int]:
    """Live processes of a session (a leader that forked helpers leaves them in it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getsid(int(entry)) == session_id:
                found.append(int(entry))
        except OSError:
            continue
    return found
