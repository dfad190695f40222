"""Noticing that the terminal went away, so perftop exits instead of spinning.

Textual's input thread treats a read of 0 bytes as "nothing yet" and selects again at once: on
stdin EOF, or a terminal that hung up, it spins at 100% CPU forever. SIGHUP usually arrives
first, but not when it is ignored (nohup) or the terminal vanished another way, so the app also
polls its input for a hang-up.
"""

from __future__ import annotations

import os
import select

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
