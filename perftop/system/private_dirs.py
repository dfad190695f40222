"""Directories perftop writes as root (merged headers, unwind tables) that nobody else may plant
or write into. One rule for every cache: BCC's own header fallback unpacked under a predictable
/tmp path (CVE-2024-2314), the mistake this guards against."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafeDirectory(Exception):
    """A directory another user owns or can write; the message names it and why."""


def check_private_dir(path: Path) -> None:
    """Refuse a directory that another user could have planted or could write into: it must
    be owned by root or by perftop's user, and writable by no one else."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectory(f"{path} is not a directory (a symlink?); remove it and retry")
    if info.st_uid not in (0, os.geteuid()):
        raise UnsafeDirectory(
            f"{path} is owned by uid {info.st_uid}, not by root or perftop's user; remove it"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeDirectory(f"{path} is writable by other users; remove it and retry")


def check_ancestor(path: Path) -> None:
    """An existing ancestor may be shared (like /var/cache or /tmp) but not hijackable: owned
    by root or by us, and writable by others only when sticky."""
    info = path.stat()
    if info.st_uid not in (0, os.geteuid()):
        raise UnsafeDirectory(f"{path} is owned by uid {info.st_uid}; refusing to write there")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        raise UnsafeDirectory(f"{path} is writable by other users; refusing to write there")


def ensure_private_dir(path: Path, owned_levels: int = 2, create: bool = True) -> None:
    """Create `path` and its parent (perftop's own directory) mode 0755 and check them; check
    that every other ancestor is safe. With `create` False nothing is made or changed: a
    missing directory raises FileNotFoundError (for readers, which must not leave a cache
    behind when there is nothing to read)."""
    chain = [*reversed(path.parents), path]
    for depth, directory in enumerate(chain):
        if depth >= len(chain) - owned_levels:
            if create:
                try:
                    directory.mkdir(mode=0o755)
                except FileExistsError:
                    pass
            check_private_dir(directory)
            if create and directory.stat().st_uid == os.geteuid():
                directory.chmod(0o755)  # earlier perftops made it 0700, root's alone
        else:
            check_ancestor(directory)
