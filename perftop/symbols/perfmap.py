"""JIT symbols from `/tmp/perf-PID.map`, read as carefully as perf does.

The file is written by the profiled process, i.e. by anyone. perftop runs as root, so it opens the
file only if it is a regular file (never through a symlink, never a FIFO that would block), owned
by the process's user or by root, and not larger than a cap; malformed lines are skipped and the
number of entries is bounded. (BCC 0.26 opens these files with none of these checks, which is one
reason perftop reads user symbols itself.)
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass, field

from perftop.model.reasons import Unresolved
from perftop.symbols.ranges import PackedSymbols
from perftop.system.procfs import process_ids

MAX_MAP_BYTES = 64 << 20  # Unresolved.PERF_MAP_TOO_LARGE says 64 MiB (a test holds them together)
MAX_ENTRIES = 1_000_000
RECHECK_S = 1.0  # JITs append as they compile: look for a newer file at most this often


@dataclass(slots=True)
class PerfMap:
    symbols: PackedSymbols = field(default_factory=PackedSymbols)

    @property
    def names(self) -> list[str]:
        return self.symbols.names

    def lookup(self, address: int) -> tuple[str, int] | None:
        index = self.symbols.find(address)
        if index is None:
            return None
        return self.symbols.name(index), address - self.symbols.starts[index]


def parse_perf_map(data: bytes, max_entries: int = MAX_ENTRIES) -> PerfMap:
    """`START SIZE NAME` lines in hex; anything else is skipped."""
    entries = []
    for line in data.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        try:
            start, size = int(parts[0], 16), int(parts[1], 16)
        except ValueError:
            continue
        if size <= 0 or start < 0 or start + size >= 1 << 64:
            continue
        entries.append((start, start + size, parts[2].strip()))
        if len(entries) >= max_entries:
            break
    entries.sort()
    return PerfMap(PackedSymbols(entries))


def open_checked(path: str, owner_uid: int | None) -> tuple[bytes | None, Unresolved | None]:
    """(contents, None) when the file passes every check, else (None, why it was refused);
    (None, None) when there is no such file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None, Unresolved.PERF_MAP_SYMLINK
        return None, None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, Unresolved.PERF_MAP_NOT_REGULAR
        if info.st_uid not in (0, owner_uid):
            return None, Unresolved.PERF_MAP_FOREIGN_OWNER
        if info.st_size > MAX_MAP_BYTES:
            return None, Unresolved.PERF_MAP_TOO_LARGE
        chunks = []
        remaining = MAX_MAP_BYTES
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks), None
    finally:
        os.close(fd)


class PerfMapReader:
    """The perf map of one process, reloaded when the file changes."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._checked_at = float("-inf")
        self._identity: tuple[int, int, int, int] | None = None
        self.map: PerfMap | None = None
        self.problem: Unresolved | None = None  # why a present map was refused

    def _paths(self) -> list[str]:
        nspid, _ = process_ids(self._pid)
        paths = [f"/proc/{self._pid}/root/tmp/perf-{nspid}.map"]
        if nspid != self._pid:
            paths.append(f"/tmp/perf-{self._pid}.map")
        return paths

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < RECHECK_S:
            return
        self._checked_at = now
        _, uid = process_ids(self._pid)
        for path in self._paths():
            try:
                info = os.lstat(path)
            except OSError:
                continue
            identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            if identity == self._identity:
                return
            data, problem = open_checked(path, uid)
            self._identity = identity
            self.problem = problem
            self.map = parse_perf_map(data) if data is not None else None
            return
        self.map, self.problem, self._identity = None, None, None

    def lookup(self, address: int) -> tuple[str, int] | None:
        self.refresh()
        return self.map.lookup(address) if self.map is not None else None
