"""Cgroup v2: where the hierarchy is mounted, which directory a cgroup id names, and which cgroup
a process is in.

A cgroup v2 id, as `bpf_get_current_cgroup_id()` returns it, is the kernfs node id of the cgroup's
directory, which on 64-bit kernels is also that directory's inode number on the cgroup2 mount
(`cgroup_id()` is `kernfs_ino()`; the live tests check this against `/proc/PID/cgroup`). So ids are
turned into paths by walking the mount and noting each directory's inode.

Paths are kept the way `/proc/PID/cgroup` prints them: relative to the mount, with a leading "/"
("/" is the root cgroup). Cgroup names are chosen by whoever may create cgroups (containers, users
with delegated subtrees): they are kept literally, and never followed as symlinks.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
ROOT_CGROUP = "/"
# The unified hierarchy's fstype in mountinfo; v1 hierarchies are "cgroup".
CGROUP2_FSTYPE = "cgroup2"
NOT_MOUNTED_REASON = "cgroup v2 is not mounted: per-cgroup rows need it"

# Bounds on one walk of the hierarchy: a host with thousands of containers has a few thousand
# cgroups, a few levels deep; anything past these limits is more likely a runaway or hostile tree.
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_CGROUPS = 20_000
# An unknown id triggers a walk; samples from a cgroup the walk cannot see (outside our cgroup
# namespace, or created and removed between walks) must not trigger one per sample.
DEFAULT_REFRESH_SECONDS = 1.0
# A removed cgroup's last counts can still arrive for an interval or two after it is gone: keep
# its name that long, then drop it.
DEFAULT_RETAIN_REMOVED_SECONDS = 5.0

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class Cgroup2Mount:
    """Where the unified hierarchy is mounted: /sys/fs/cgroup, /sys/fs/cgroup/unified if hybrid."""

    path: Path


@dataclass(frozen=True, slots=True)
class CgroupsUnavailable:
    """Why there are no per-cgroup rows, in one line the screen and batch output can show once."""

    reason: str


def _unescape_mount_field(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in paths as \040, \011, \012, \134.
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def cgroup2_mount_point(mountinfo_text: str) -> Path | None:
    """The first cgroup2 mount point in `/proc/self/mountinfo` text, or None.

    Format (proc(5)): `id parent major:minor root mount-point options [optional...] - fstype source
    super-options`; the optional fields vary in number, so the fstype is found after the "-".
    """
    for line in mountinfo_text.splitlines():
        fields = line.split()
        try:
            separator = fields.index("-")
        except ValueError:
            continue
        if separator < 5 or separator + 1 >= len(fields):
            continue
        if fields[separator + 1] == CGROUP2_FSTYPE:
            return Path(_unescape_mount_field(fields[4]))
    return None


def cgroup2_mount_point_from_mounts(mounts_text: str) -> Path | None:
    """The same from `/proc/mounts` (`source mount-point fstype options 0 0`), for kernels or
    sandboxes where mountinfo cannot be read."""
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == CGROUP2_FSTYPE:
            return Path(_unescape_mount_field(fields[1]))
    return None


def find_cgroup2_mount(proc: Path = PROC) -> Cgroup2Mount | CgroupsUnavailable:
    """The cgroup2 mount this process sees, or why there is none (cgroup v1 only)."""
    parsers: tuple[tuple[Path, Callable[[str], Path | None]], ...] = (
        (proc / "self" / "mountinfo", cgroup2_mount_point),
        (proc / "mounts", cgroup2_mount_point_from_mounts),
    )
    for table, parse in parsers:
        try:
            text = table.read_text(errors="surrogateescape")
        except OSError:
            continue
        mount_point = parse(text)
        return (
            CgroupsUnavailable(NOT_MOUNTED_REASON)
            if mount_point is None
            else Cgroup2Mount(mount_point)
        )
    return CgroupsUnavailable(NOT_MOUNTED_REASON)


def cgroup_from_proc_text(proc_cgroup_text: str) -> str | None:
    """The v2 path in `/proc/PID/cgroup` text: the `0::/path` line (v1 lines have a hierarchy
    number and controller names).

    The kernel prints paths raw, and a cgroup name may contain ":" or even a newline. The v2 line
    is printed last, so the path is everything after the first line that starts with "0::" (a
    fake "0::" line inside a v1 name would need root to create v1 cgroups; v2 names are the ones
    delegated to containers and users, and those stay whole)."""
    text = proc_cgroup_text
    start = 0 if text.startswith("0::") else text.find("\n0::") + 1
    if start == 0 and not text.startswith("0::"):
        return None
    path = text[start + len("0::") :]
    path = path[:-1] if path.endswith("\n") else path
    return path if path.startswith("/") else None


def cgroup_of(pid: int, proc: Path = PROC) -> str | None:
    """The cgroup v2 path of a process, or None if it has exited or has no v2 cgroup."""
    try:
        text = (proc / str(pid) / "cgroup").read_text(errors="surrogateescape")
    except (OSError, ValueError):
        return None
    return cgroup_from_proc_text(text)


def cgroup_directory(mount: Path, cgroup: str) -> Path:
    """The directory of a cgroup path ("/a/b") under the mount."""
    return mount / cgroup.lstrip("/") if cgroup != ROOT_CGROUP else mount


def _join(parent: str, name: str) -> str:
    return f"/{name}" if parent == ROOT_CGROUP else f"{parent}/{name}"


def is_same_or_descendant(cgroup: str, ancestor: str) -> bool:
    """Whether `cgroup` is `ancestor` or lies below it, by path components ("/a/bc" is not under
    "/a/b")."""
    if ancestor == ROOT_CGROUP or cgroup == ancestor:
        return True
    return cgroup.startswith(ancestor + "/")


@dataclass(frozen=True, slots=True)
class WalkResult:
    """One walk of the hierarchy: path by id, and whether a bound stopped it early."""

    paths_by_id: dict[int, str]
    truncated: bool


def walk_cgroups(
    mount: Path, *, max_depth: int = DEFAULT_MAX_DEPTH, max_cgroups: int = DEFAULT_MAX_CGROUPS
) -> WalkResult:
    """Every cgroup directory under the mount, breadth first (so a bound keeps the shallow ones,
    which name the services and containers), without following symlinks. A directory removed
    during the walk is skipped, not an error."""
    paths_by_id: dict[int, str] = {}
    try:
        paths_by_id[os.stat(mount, follow_symlinks=False).st_ino] = ROOT_CGROUP
    except OSError:
        return WalkResult(paths_by_id, truncated=False)
    pending: deque[tuple[str, int]] = deque([(ROOT_CGROUP, 0)])
    truncated = False
    while pending:
        cgroup, depth = pending.popleft()
        if depth >= max_depth:
            truncated = True
            continue
        try:
            with os.scandir(cgroup_directory(mount, cgroup)) as entries:
                for entry in entries:
                    # Only subdirectories are cgroups; interface files are regular files.
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    if len(paths_by_id) >= max_cgroups:
                        truncated = True
                        pending.clear()  # full: nothing further down can be kept either
                        break
                    child = _join(cgroup, entry.name)
                    # d_ino from readdir: kernfs reports the node id there too, so no stat per
                    # directory is needed.
                    paths_by_id[entry.inode()] = child
                    pending.append((child, depth + 1))
        except OSError:
            continue  # removed (or unreadable) while walking
    return WalkResult(paths_by_id, truncated)


@dataclass(frozen=True, slots=True)
class _Known:
    path: str
    # Monotonic time the walk stopped seeing it; None while it exists.
    removed_at: float | None


class CgroupResolver:
    """Cgroup id -> path, cached, refreshed by a walk when an unknown id is asked for (at most once
    per `refresh_seconds`). A cgroup that disappears keeps its path for `retain_removed_seconds`
    so its last counts still get a name, then it is forgotten; asking for it after that is None,
    never an error. Not thread-safe: one owner (the thread that builds intervals) calls it."""

    def __init__(
        self,
        mount: Path,
        *,
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_cgroups: int = DEFAULT_MAX_CGROUPS,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        retain_removed_seconds: float = DEFAULT_RETAIN_REMOVED_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mount = mount
        self._max_depth = max_depth
        self._max_cgroups = max_cgroups
        self._refresh_seconds = refresh_seconds
        self._retain_removed_seconds = retain_removed_seconds
        self._clock = clock
        self._known: dict[int, _Known] = {}
        self._last_walk: float | None = None
        self.truncated = False

    def refresh(self) -> None:
        """Walk now, whatever the rate limit."""
        now = self._clock()
        walk = walk_cgroups(self.mount, max_depth=self._max_depth, max_cgroups=self._max_cgroups)
        self.truncated = walk.truncated
        known: dict[int, _Known] = {
            cgroup_id: _Known(path, None) for cgroup_id, path in walk.paths_by_id.items()
        }
        for cgroup_id, previous in self._known.items():
            if cgroup_id in known:
                continue
            if previous.removed_at is None and self.id_of(previous.path) == cgroup_id:
                known[cgroup_id] = previous  # beyond a bound of this walk, but still there
                continue
            removed_at = now if previous.removed_at is None else previous.removed_at
            if now - removed_at < self._retain_removed_seconds:
                known[cgroup_id] = _Known(previous.path, removed_at)
        self._known = known
        self._last_walk = now

    def refresh_if_due(self) -> None:
        """Walk if the last walk is `refresh_seconds` old. Called once per interval, so removed
        cgroups are noticed (and age out) even when no new id shows up."""
        if self._last_walk is None or self._clock() - self._last_walk >= self._refresh_seconds:
            self.refresh()

    def path_of(self, cgroup_id: int) -> str | None:
        """The path of a cgroup id, or None if no walk has seen it (or it was removed long ago)."""
        known = self._known.get(cgroup_id)
        if known is None:
            self.refresh_if_due()
            known = self._known.get(cgroup_id)
        return None if known is None else known.path

    def is_removed(self, cgroup_id: int) -> bool:
        known = self._known.get(cgroup_id)
        return known is not None and known.removed_at is not None

    def id_of(self, cgroup: str) -> int | None:
        """The id of a live cgroup path, straight from the directory (no walk)."""
        try:
            return os.stat(cgroup_directory(self.mount, cgroup), follow_symlinks=False).st_ino
        except OSError:
            return None

    def ancestor_ids(self, cgroup_id: int) -> tuple[int, ...]:
        """Ids from the root down to this cgroup, inclusive; what an in-kernel ancestor check
        (`bpf_get_current_ancestor_cgroup_id`) compares at each level. Empty if unknown."""
        path = self.path_of(cgroup_id)
        if path is None:
            return ()
        # A path removed and made again has two ids; the live one is its ancestor now.
        ids_by_path = {
            known.path: known_id
            for known_id, known in sorted(
                self._known.items(), key=lambda item: item[1].removed_at is None
            )
        }
        prefixes = [ROOT_CGROUP]
        for component in path.strip("/").split("/") if path != ROOT_CGROUP else ():
            prefixes.append(_join(prefixes[-1], component))
        return tuple(ids_by_path[prefix] for prefix in prefixes if prefix in ids_by_path)
