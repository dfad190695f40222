"""Opening another process's files as that process sees them, and no further.

A path under /proc/PID/root is resolved inside that root: an absolute symlink planted in a
container (`/usr/bin/app -> /etc/shadow`) names the container's /etc/shadow, never the host's.
openat2(RESOLVE_IN_ROOT) does exactly this in the kernel (5.6+); where it is missing, each
component is opened with O_NOFOLLOW and a symlink anywhere refuses the file. /proc/PID/map_files
entries are the kernel's own links to the very file mapped, and are opened as they are.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import stat
from typing import BinaryIO

_SYS_OPENAT2 = 437  # the same number on x86-64 and arm64
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_ROOT_PATH = re.compile(r"^(/proc/\d+/root)(/.*)$")
_MAP_FILES = re.compile(r"^/proc/\d+/map_files/[0-9a-f]+-[0-9a-f]+$")


class OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


class RefusedFile(Exception):
    """One line for the user: why the file was not read."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _open_in_root(root: str, inside: str, flags: int) -> int:
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = OpenHow(flags, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        libc = _libc()
        libc.syscall.restype = ctypes.c_long
        fd = libc.syscall(
            _SYS_OPENAT2,
            ctypes.c_int(root_fd),
            ctypes.c_char_p(os.fsencode(inside.lstrip("/") or ".")),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        error = ctypes.get_errno()
        if error not in (errno.ENOSYS, errno.EPERM):  # EPERM: a seccomp filter refused it
            raise OSError(error, os.strerror(error))
        return _open_without_symlinks(root_fd, inside, flags)
    finally:
        os.close(root_fd)


def _open_without_symlinks(root_fd: int, inside: str, flags: int) -> int:
    parts = [part for part in inside.split("/") if part and part != "."]
    if not parts or ".." in parts:
        raise OSError(errno.EACCES, "path leaves the process's root")
    directory = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            following = os.open(
                part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory
            )
            os.close(directory)
            directory = following
        return os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=directory)
    finally:
        os.close(directory)


def open_in_view(path: str, max_bytes: int) -> BinaryIO:
    """A regular file of at most `max_bytes`, opened as the process sees it. Raises
    RefusedFile with the reason."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        rooted = _ROOT_PATH.match(path)
        if rooted is not None:
            fd = _open_in_root(rooted.group(1), rooted.group(2), flags)
        elif _MAP_FILES.match(path) or path == "/proc/kcore":
            fd = os.open(path, flags)
        else:
            fd = os.open(path, flags | os.O_NOFOLLOW)
    except OSError as error:
        raise RefusedFile(f"cannot open it: {error.strerror or error}") from error
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RefusedFile("not a regular file")
    if path != "/proc/kcore" and info.st_size > max_bytes:
        os.close(fd)
        raise RefusedFile(f"larger than {max_bytes >> 20} MiB")
    return os.fdopen(fd, "rb")
