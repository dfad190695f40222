"""`--cgroup PATH[,PATH]`: which cgroups the user asked for, checked before sampling starts, and
whether a sample's cgroup is one of them or below one.

The kernel filter will compare ids (`bpf_current_task_under_cgroup`, or ancestor ids); this is the
user-space side: the validated ids for it, and the same test in Python for fallbacks and tests.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from perftop.sanitize import printable
from perftop.system.cgroups import (
    PROC,
    ROOT_CGROUP,
    Cgroup2Mount,
    CgroupResolver,
    cgroup_directory,
    cgroup_of,
    find_cgroup2_mount,
    is_same_or_descendant,
)

# Entries of the BPF program's cgroup_filter map (perftop.sampling.bcc.abi mirrors it): the
# limit --cgroup and the screen's prompt check.
MAX_CGROUPS = 16


@dataclass(frozen=True, slots=True)
class CgroupSelection:
    """The cgroups `--cgroup` named: their paths (as /proc/PID/cgroup prints them) and ids."""

    paths: tuple[str, ...]
    ids: frozenset[int]

    def contains_path(self, cgroup: str) -> bool:
        """Whether a cgroup is one of the selected ones or below one of them."""
        return any(is_same_or_descendant(cgroup, selected) for selected in self.paths)

    def contains_id(self, cgroup_id: int, resolver: CgroupResolver) -> bool:
        """The same for an id from a sample (the user-space fallback of the kernel filter)."""
        if cgroup_id in self.ids:
            return True
        path = resolver.path_of(cgroup_id)
        return path is not None and self.contains_path(path)


def _quoted(text: str) -> str:
    # The argument goes into a one-line error: escape whatever would break or fake that line.
    return printable(text, limit=200)


def cgroup_path_for_argument(argument: str, mount: Path) -> str:
    """An argument as a cgroup path: absolute under the mount, else relative to it; a leading "/"
    not under the mount reads as /proc/PID/cgroup prints paths (relative to the mount)."""
    mount_text = os.path.normpath(str(mount))
    candidate = os.path.normpath(argument)
    if candidate == mount_text:
        return ROOT_CGROUP
    if candidate.startswith(mount_text + "/"):
        relative = candidate[len(mount_text) :]
    else:
        relative = "/" + candidate.lstrip("/")
    relative = os.path.normpath(relative)
    # normpath collapses "/.." to "/", so ".." can never climb out of the mount; "//" is POSIX's.
    return ROOT_CGROUP if relative in ("/", "//", ".") else "/" + relative.lstrip("/")


def parse_cgroup_selection(argument: str, mount: Path) -> CgroupSelection:
    """`--cgroup PATH[,PATH]`: each path relative to the cgroup2 mount or absolute under it.
    Raises ValueError with one line for an empty item, a path that does not exist, or a directory
    that is not a cgroup (no `cgroup.procs`)."""
    paths: list[str] = []
    ids: set[int] = set()
    for item in argument.split(","):
        if not item.strip():
            raise ValueError(f"--cgroup {_quoted(argument)}: an empty path in the list")
        cgroup = cgroup_path_for_argument(item.strip(), mount)
        directory = cgroup_directory(mount, cgroup)
        try:
            status = os.stat(directory, follow_symlinks=False)
        except OSError:
            raise ValueError(
                f"--cgroup {_quoted(item)}: no such cgroup under {_quoted(str(mount))}"
            ) from None
        if not stat.S_ISDIR(status.st_mode):  # a file, or a symlink (lstat: never followed)
            raise ValueError(f"--cgroup {_quoted(item)}: not a cgroup directory")
        if not os.path.exists(directory / "cgroup.procs"):
            raise ValueError(
                f"--cgroup {_quoted(item)}: not a cgroup (no cgroup.procs in "
                f"{_quoted(str(directory))})"
            )
        if cgroup not in paths:
            paths.append(cgroup)
        ids.add(status.st_ino)
    if len(paths) > MAX_CGROUPS:
        raise ValueError(f"--cgroup: at most {MAX_CGROUPS} cgroups can be filtered at once")
    return CgroupSelection(tuple(paths), frozenset(ids))


def parse_cgroup_paths(text: str, *, live: bool = True, what: str = "--cgroup") -> tuple[str, ...]:
    """What the user typed (`--cgroup`, the screen's `c` prompt) -> cgroup paths as
    /proc/PID/cgroup prints them; "" is none. Live, each must be a cgroup on this machine's
    cgroup2 mount (relative to it, or absolute under it); for a replay the paths are those
    recorded, so they are only normalised. ValueError with the one line to show."""
    if not text.strip():
        return ()
    if live:
        found = find_cgroup2_mount()
        if not isinstance(found, Cgroup2Mount):
            raise ValueError(f"{what}: {found.reason}")
        return parse_cgroup_selection(text, found.path).paths
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ValueError(f"{what} {_quoted(text)}: an empty path in the list")
    paths = tuple(dict.fromkeys(cgroup_path_for_argument(item, Path("/")) for item in items))
    if len(paths) > MAX_CGROUPS:
        raise ValueError(f"{what}: at most {MAX_CGROUPS} cgroups can be filtered at once")
    return paths


def selected_pids(selection: CgroupSelection, pids: Iterable[int], proc: Path = PROC) -> list[int]:
    """Which of these processes are in the selection, by their /proc/PID/cgroup."""
    chosen: list[int] = []
    for pid in pids:
        cgroup = cgroup_of(pid, proc)
        if cgroup is not None and selection.contains_path(cgroup):
            chosen.append(pid)
    return chosen
