"""A head start on a busy machine: the screen's start-up runs at a raised priority, then gives
it back.

perftop is started on machines whose CPUs are busy, and everything it does before the first
profile (Python's imports, Textual's first layout, the BPF compile in clang) is CPU work. Under
the scheduler's autogroups every session gets an equal share of a CPU whatever its nice, so on
two CPUs kept busy by two other sessions the screen took 1.4 s to paint and the profile came
~1 s after a compile that took 3-4 s. Like atop (which runs at nice -20 throughout), perftop
raises its priority, but only until the first profile is on its way: from then on it competes
like any other session, so the steady-state cost to the profiled work is unchanged.

Two knobs, both given back: the session's autogroup nice (/proc/self/autogroup, what counts
against other sessions when autogroups are on) and the nice of perftop's threads (what counts
against other processes otherwise, and inside the session). Raising either needs CAP_SYS_NICE;
without it nothing changes. Only a SIGKILL during start-up leaves the session's autogroup
raised (its shell and jobs keep nice -10 against other sessions until they end).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

STARTUP_NICE = -10
# Given back by then whatever happens (a compile stuck on a slow disk, say).
BOOST_LIMIT_S = 30.0
AUTOGROUP = Path("/proc/self/autogroup")
AUTOGROUP_ENABLED = Path("/proc/sys/kernel/sched_autogroup_enabled")
TASKS = Path("/proc/self/task")


def autogroup_nice(text: str) -> int | None:
    """The nice in /proc/PID/autogroup ("/autogroup-123 nice 0"), or None."""
    words = text.split()
    if len(words) == 3 and words[1] == "nice":
        try:
            return int(words[2])
        except ValueError:
            return None
    return None


class StartupBoost:
    """`begin()` raises the priority; `end()` (idempotent, from any thread) restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._autogroup_was: int | None = None
        self._threads_were: int | None = None
        self._timer: threading.Timer | None = None

    @property
    def active(self) -> bool:
        return self._autogroup_was is not None or self._threads_were is not None

    @classmethod
    def begin(cls) -> StartupBoost:
        """Call before perftop starts its threads: they inherit the calling thread's nice."""
        boost = cls()
        boost._raise_autogroup()
        boost._raise_threads()
        if boost.active:
            boost._timer = threading.Timer(BOOST_LIMIT_S, boost.end)
            boost._timer.daemon = True
            boost._timer.start()
        return boost

    def _raise_autogroup(self) -> None:
        try:
            if AUTOGROUP_ENABLED.read_text().strip() != "1":
                return
            was = autogroup_nice(AUTOGROUP.read_text())
            if was is None or was <= STARTUP_NICE:
                return
            AUTOGROUP.write_text(str(STARTUP_NICE))
        except OSError:  # no autogroups in this kernel, or no CAP_SYS_NICE
            return
        self._autogroup_was = was

    def _raise_threads(self) -> None:
        try:
            was = os.getpriority(os.PRIO_PROCESS, 0)  # this thread, on Linux
            if was <= STARTUP_NICE:
                return
            os.setpriority(os.PRIO_PROCESS, 0, STARTUP_NICE)
        except OSError:
            return
        self._threads_were = was

    def end(self) -> None:
        with self._lock:
            autogroup_was, self._autogroup_was = self._autogroup_was, None
            threads_were, self._threads_were = self._threads_were, None
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if autogroup_was is not None:
            try:
                AUTOGROUP.write_text(str(autogroup_was))
            except OSError:
                pass
        if threads_were is not None:
            # Every thread started since begin() inherited the raised nice (on Linux a nice
            # is per thread); those still at it get the old one back.
            try:
                tids = [int(name) for name in os.listdir(TASKS)]
            except OSError:
                tids = [0]
            for tid in tids:
                try:
                    if os.getpriority(os.PRIO_PROCESS, tid) == STARTUP_NICE:
                        os.setpriority(os.PRIO_PROCESS, tid, threads_were)
                except OSError:  # the thread ended meanwhile
                    continue
