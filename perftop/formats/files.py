"""Writing a file the user named: a profile (folded, speedscope, pprof), -o output, a recording.

perftop often runs as root in a directory others can write to (/tmp, a shared checkout). A file
name there may already be a symlink planted by another user, pointing at something root must
never clobber. So a file is created with O_EXCL (it must not exist) and O_NOFOLLOW; replacing an
existing file happens only when the user asked for it, and even then never through a symlink.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from perftop.formats.meta import ProfileMeta
from perftop.formats.registry import FORMATS
from perftop.model.errors import PerftopError
from perftop.model.samples import StackSample


class ExportError(PerftopError):
    """The file cannot be written; one line for the user."""


class ExportExists(ExportError):
    """The path names an existing regular file: write again with `overwrite` if the user says so."""


def encode(
    export_format: str, stacks: Sequence[StackSample], meta: ProfileMeta, name: str = "perftop"
) -> bytes:
    """The file's content, by the format's entry in the registry."""
    found = FORMATS.get(export_format)
    if found is None or not found.exportable:
        raise ValueError(f"unknown export format {export_format!r}")
    return found.encode_profile(stacks, meta, name)


def _refusal(path: Path, error: OSError) -> ExportError:
    """What went wrong, in the user's terms."""
    if error.errno == errno.EEXIST:
        try:
            mode = path.lstat().st_mode
        except OSError:
            mode = 0
        if stat.S_ISLNK(mode):
            return ExportError(f"{path} is a symlink: perftop never writes through one")
        if stat.S_ISDIR(mode):
            return ExportError(f"{path} is a directory")
        if mode and not stat.S_ISREG(mode):
            return ExportError(f"{path} is not a regular file")
        return ExportExists(f"{path} already exists")
    if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
        return ExportError(f"{path} is a symlink: perftop never writes through one")
    if error.errno == errno.EISDIR:
        return ExportError(f"{path} is a directory")
    if error.errno == errno.ENOENT:
        return ExportError(f"cannot write {path}: no directory {path.parent}")
    if error.errno == errno.ENXIO:  # a FIFO nobody reads (O_NONBLOCK)
        return ExportError(f"{path} is not a regular file")
    return ExportError(f"cannot write {path}: {error.strerror or error}")


def open_export(path: Path, *, overwrite: bool = False, permissions: int = 0o644) -> BinaryIO:
    """Open `path` for writing without following a symlink in its last component: the one
    safe open behind every file perftop writes (exports, -o, recordings).

    Without `overwrite` the file must not exist (O_EXCL). With it, an existing regular file is
    emptied, but only after fstat has shown that what was opened is one: O_TRUNC would act
    before that check. O_NONBLOCK keeps a planted FIFO from blocking the open forever.
    Raises ExportExists when the file exists and `overwrite` is false, ExportError otherwise.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    if not overwrite:
        flags |= os.O_EXCL
    try:
        fd = os.open(path, flags, permissions)
    except OSError as error:
        raise _refusal(path, error) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ExportError(f"{path} is not a regular file")
        if overwrite:
            os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
    except OSError as error:
        os.close(fd)
        raise ExportError(f"cannot write {path}: {error.strerror or error}") from None
    except ExportError:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def write_export(
    path: Path,
    export_format: str,
    stacks: Sequence[StackSample],
    meta: ProfileMeta,
    *,
    overwrite: bool = False,
    name: str = "perftop",
) -> int:
    """Write `stacks` to `path` in `export_format`; the number of bytes written.

    Raises ExportExists when `path` exists and `overwrite` is false (ask the user, then call
    again with `overwrite=True`), ExportError for anything else that stops the write. A file
    this call created is removed again when writing it fails, so no half profile is left.
    """
    content = encode(export_format, stacks, meta, name)
    try:
        with open_export(path, overwrite=overwrite) as handle:
            handle.write(content)
    except OSError as error:  # the disk is full, a quota, an I/O error: not a half profile
        if not overwrite:
            path.unlink(missing_ok=True)  # it was created by this call (O_EXCL)
        raise ExportError(f"cannot write {path}: {error.strerror or error}") from None
    return len(content)
