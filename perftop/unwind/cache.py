"""Unwind tables and function starts, built once per build id and cached on disk.

`<cache root>/unwind/<build id hex>.bin`, where the cache root is `/var/cache/perftop` for root
and `$XDG_CACHE_HOME/perftop` (or `~/.cache/perftop`) for others. Building python3.11's table
costs 0.46 s of CPU here, reading it back 0.032 s (libc: 0.19 and 0.021 s; bench/unwind_tables.py).
The file:

    offset 0   8s  magic b"PTUNWIND"
    offset 8   u32 format version (1)
    offset 12  u32 row count
    offset 16  u32 function count
    offset 20  u32 CRC-32 of everything after the 32-byte header
    offset 24  8   reserved, zero
    offset 32  rows (table.ROW_FORMAT, 16 bytes each), then functions (u64 start, u64 size)

A file whose size, magic, version, checksum or row order is wrong is rebuilt, never trusted.
It is written to a temporary file in the same directory and renamed into place, so a reader
sees a whole file or none; a crash before the data reaches the disk leaves a file that fails
its checksum, which is why there is no fsync.

The cache directory follows perftop's one rule for what it writes as root
(perftop.system.private_dirs), the same as the merged kernel headers.
"""

from __future__ import annotations

import os
import stat
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from perftop.system import private_dirs
from perftop.unwind.eh_frame import read_call_frame_info
from perftop.unwind.elf import gnu_build_id, open_elf
from perftop.unwind.functions import FUNCTION_FORMAT, FunctionStarts
from perftop.unwind.table import ROW_SIZE, UnwindTable, build_table

MAGIC = b"PTUNWIND"
FORMAT_VERSION = 1
HEADER_FORMAT = struct.Struct("<8sIIII8x")  # 32 bytes
ROOT_CACHE = Path("/var/cache/perftop")


class UnwindCacheError(Exception):
    """The cache directory is unsafe (owned or writable by another user) or cannot be made."""


@dataclass(frozen=True, slots=True)
class UnwindInfo:
    path: Path
    build_id: bytes | None
    table: UnwindTable
    functions: FunctionStarts
    from_cache: bool
    errors: tuple[str, ...]  # decoding problems (only known when built, not when cached)
    cache_problem: str | None  # why the cache was not used, if it was not


def default_cache_root() -> Path:
    if os.geteuid() == 0:
        return ROOT_CACHE
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perftop"


def build_unwind_info(path: Path) -> UnwindInfo:
    """Decode `path`'s CFI into a table and function starts, without any cache."""
    image = open_elf(path)
    try:
        build_id = gnu_build_id(image)
        info = read_call_frame_info(image)
        built = build_table(info, image.is_executable_address)
        functions = FunctionStarts.from_fdes(
            fde for fde in info.fdes if image.is_executable_address(fde.start)
        )
    finally:
        image.close()
    return UnwindInfo(path, build_id, built.table, functions, False, built.errors, None)


def load_unwind_info(path: Path, cache_root: Path | None = None) -> UnwindInfo:
    """The cached tables for `path`'s build id, or freshly built ones (then cached). An unsafe
    cache directory is not used: the tables are built and `cache_problem` says why.
    Raises `ElfError` or `OSError` when `path` itself cannot be read."""
    root = cache_root if cache_root is not None else default_cache_root()
    image = open_elf(path)
    try:
        build_id = gnu_build_id(image)
    finally:
        image.close()
    if build_id is None:
        info = build_unwind_info(path)
        return _with_problem(info, "no GNU build id: not cached")
    directory = root / "unwind"
    try:
        ensure_private_dir(directory)
    except (UnwindCacheError, OSError) as error:
        return _with_problem(build_unwind_info(path), str(error))
    cache_file = directory / f"{build_id.hex()}.bin"
    cached = read_cache_file(cache_file)
    if cached is not None:
        table, functions = cached
        return UnwindInfo(path, build_id, table, functions, True, (), None)
    info = build_unwind_info(path)
    try:
        write_cache_file(cache_file, info.table, info.functions)
    except OSError as error:
        return _with_problem(info, f"cannot write {cache_file}: {error}")
    return info


def cached_function_starts(
    build_id_hex: str, cache_root: Path | None = None
) -> FunctionStarts | None:
    """The function starts cached beside the unwind table of the binary with this build id,
    when perftop has built it (the symbols of a stripped binary need them too, and decoding
    its `.eh_frame` again costs 15-20 times reading them back); None when it has not, or the
    cache directory is unsafe."""
    if not build_id_hex:
        return None
    root = cache_root if cache_root is not None else default_cache_root()
    directory = root / "unwind"
    try:
        ensure_private_dir(directory, create=False)  # nothing to read where there is none
    except (UnwindCacheError, OSError):
        return None
    # The rows are checked (the checksum) but not decoded: a third of the cost of decoding.
    content = _read_owned_file(directory / f"{build_id_hex}.bin")
    rows_end = _checked_rows_end(content) if content is not None else None
    if content is None or rows_end is None:
        return None
    try:
        return FunctionStarts.unpack(content[rows_end:])
    except ValueError:
        return None


def _with_problem(info: UnwindInfo, problem: str) -> UnwindInfo:
    return UnwindInfo(
        info.path, info.build_id, info.table, info.functions, False, info.errors, problem
    )


def encode_cache_file(table: UnwindTable, functions: FunctionStarts) -> bytes:
    payload = table.packed + functions.pack()
    header = HEADER_FORMAT.pack(
        MAGIC, FORMAT_VERSION, len(table), len(functions), zlib.crc32(payload)
    )
    return header + payload


def decode_cache_file(content: bytes) -> tuple[UnwindTable, FunctionStarts] | None:
    """The tables in `content`, or None if anything about it is wrong."""
    rows_end = _checked_rows_end(content)
    if rows_end is None:
        return None
    try:
        table = UnwindTable.from_packed(content[HEADER_FORMAT.size : rows_end])
        functions = FunctionStarts.unpack(content[rows_end:])
    except ValueError:
        return None
    return table, functions


def _checked_rows_end(content: bytes) -> int | None:
    """Where the rows of a whole, well-formed cache file end; None if anything is wrong."""
    if len(content) < HEADER_FORMAT.size:
        return None
    magic, version, row_count, function_count, checksum = HEADER_FORMAT.unpack_from(content)
    rows_end: int = HEADER_FORMAT.size + row_count * ROW_SIZE
    expected_size = rows_end + function_count * FUNCTION_FORMAT.size
    if magic != MAGIC or version != FORMAT_VERSION or len(content) != expected_size:
        return None
    if zlib.crc32(memoryview(content)[HEADER_FORMAT.size :]) != checksum:
        return None
    return rows_end


def read_cache_file(cache_file: Path) -> tuple[UnwindTable, FunctionStarts] | None:
    content = _read_owned_file(cache_file)
    return decode_cache_file(content) if content is not None else None


def _read_owned_file(cache_file: Path) -> bytes | None:
    """The content of a regular file owned by root or by perftop's user, not through a link."""
    try:
        descriptor = os.open(cache_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid not in (0, os.geteuid()):
            return None
        try:
            return file.read()
        except OSError:
            return None


def write_cache_file(cache_file: Path, table: UnwindTable, functions: FunctionStarts) -> None:
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=cache_file.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(encode_cache_file(table, functions))
        os.chmod(temporary, 0o644)
        os.replace(temporary, cache_file)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def ensure_private_dir(path: Path, owned_levels: int = 2, create: bool = True) -> None:
    """perftop's one rule for the directories it writes as root (perftop.system.private_dirs)."""
    try:
        private_dirs.ensure_private_dir(path, owned_levels, create)
    except private_dirs.UnsafeDirectory as error:
        raise UnwindCacheError(f"{error}; not caching unwind tables") from None
