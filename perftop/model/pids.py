"""PIDs the user typed, on the command line (-p) or in the screen's `p` prompt: one parser,
one limit, one wording for both. Whether each process exists is for the caller to check
(`check_exist`), since only a live source cares and this module touches no system."""

from __future__ import annotations

from collections.abc import Callable, Iterable

# The BPF program's pid filter holds this many entries (sampling/bcc is tested against it).
MAX_PIDS = 64
MAX_PID = 4_194_304  # PID_MAX_LIMIT: no kernel hands out a larger PID
_LARGEST_PID_TEXT = 2**31  # beyond a pid_t: not a PID at all, rather than a missing one


def parse_pids(text: str) -> tuple[int, ...]:
    """`"12, 34 56"` -> (12, 34, 56): separated by commas and/or spaces, repeats dropped; an
    empty (or blank) text is no PID. ValueError with the one line to show, naming the first
    bad entry. An empty entry between commas is one: `-p "$A,$B"` with B unset should say
    so, not quietly watch fewer processes."""
    pids: dict[int, None] = {}
    if not text.strip():
        return ()
    for entry in text.split(","):
        for part in entry.split() or [""]:
            # isascii: '²' and other Unicode digits pass isdigit() but int() refuses them.
            if not (part.isascii() and part.isdigit()) or not 0 < int(part) < _LARGEST_PID_TEXT:
                raise ValueError(f"'{part[:20]}' is not a PID (a positive whole number)")
            pids[int(part)] = None
    if len(pids) > MAX_PIDS:
        raise ValueError(f"at most {MAX_PIDS} PIDs can be filtered at once")
    return tuple(pids)


def missing_pid_message(pid: int) -> str:
    return f"no process with PID {pid}"


def check_exist(pids: Iterable[int], exists: Callable[[int], bool]) -> None:
    """ValueError naming the first PID with no process (`exists` is e.g. psutil.pid_exists)."""
    for pid in pids:
        if pid > MAX_PID or not exists(pid):
            raise ValueError(missing_pid_message(pid))
