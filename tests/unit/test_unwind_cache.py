"""The on-disk cache: one file per build id, rebuilt when damaged, refused in unsafe places."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from perftop.unwind import cache
from perftop.unwind.cache import (
    HEADER_FORMAT,
    MAGIC,
    UnwindCacheError,
    default_cache_root,
    encode_cache_file,
    ensure_private_dir,
    load_unwind_info,
)
from perftop.unwind.elf import gnu_build_id, open_elf
from perftop.unwind.table import ROW_FORMAT
from tests.unit.unwind_support import compile_chain, shared_chain

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture
def chain_binary() -> Path:
    return shared_chain()


def cache_file_of(binary: Path, root: Path) -> Path:
    image = open_elf(binary)
    build_id = gnu_build_id(image)
    image.close()
    assert build_id is not None
    return root / "unwind" / f"{build_id.hex()}.bin"


def test_second_load_comes_from_the_cache_and_is_identical(
    chain_binary: Path, tmp_path: Path
) -> None:
    built = load_unwind_info(chain_binary, tmp_path)
    cached = load_unwind_info(chain_binary, tmp_path)

    assert (built.from_cache, cached.from_cache) == (False, True)
    assert cached.table.packed == built.table.packed
    assert cached.functions == built.functions
    assert cached.cache_problem is None
    assert os.listdir(tmp_path / "unwind") == [cache_file_of(chain_binary, tmp_path).name]


def test_cache_file_header_layout(chain_binary: Path, tmp_path: Path) -> None:
    info = load_unwind_info(chain_binary, tmp_path)
    content = cache_file_of(chain_binary, tmp_path).read_bytes()

    magic, version, rows, functions, _ = HEADER_FORMAT.unpack_from(content)

    assert HEADER_FORMAT.size == 32 and magic == MAGIC == b"PTUNWIND" and version == 1
    assert (rows, functions) == (len(info.table), len(info.functions))
    assert len(content) == 32 + rows * ROW_FORMAT.size + functions * 16


def _flip_payload_byte(content: bytes) -> bytes:
    damaged = bytearray(content)
    damaged[HEADER_FORMAT.size + 3] ^= 0x40
    return bytes(damaged)


def _unsorted_with_a_valid_checksum(content: bytes) -> bytes:
    rows = struct.unpack_from("<I", content, 12)[0]
    payload = bytearray(content[HEADER_FORMAT.size :])
    payload[0:16], payload[16:32] = payload[16:32], payload[0:16]
    functions = payload[rows * 16 :]
    table = bytes(payload[: rows * 16])
    header = HEADER_FORMAT.pack(MAGIC, 1, rows, len(functions) // 16, zlib.crc32(table + functions))
    return header + table + bytes(functions)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda content: content[:-1], id="truncated"),
        pytest.param(lambda content: b"", id="empty"),
        pytest.param(lambda content: b"XXXXXXXX" + content[8:], id="bad magic"),
        pytest.param(lambda content: content[:8] + b"\x02" + content[9:], id="other version"),
        pytest.param(_flip_payload_byte, id="checksum mismatch"),
        pytest.param(_unsorted_with_a_valid_checksum, id="unsorted rows"),
    ],
)
def test_a_damaged_cache_file_is_rebuilt_not_trusted(
    chain_binary: Path, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    good = load_unwind_info(chain_binary, tmp_path)
    cache_file = cache_file_of(chain_binary, tmp_path)
    cache_file.write_bytes(damage(cache_file.read_bytes()))

    reloaded = load_unwind_info(chain_binary, tmp_path)
    again = load_unwind_info(chain_binary, tmp_path)

    assert reloaded.from_cache is False and reloaded.table.packed == good.table.packed
    assert again.from_cache is True  # the rebuilt file replaced the damaged one


def test_a_cache_directory_writable_by_others_is_refused(
    chain_binary: Path, tmp_path: Path
) -> None:
    real = load_unwind_info(chain_binary, tmp_path / "elsewhere")
    planted = tmp_path / "root" / "unwind"
    planted.mkdir(parents=True)
    planted.chmod(0o777)
    # What another user could plant there: a well-formed file with someone else's rows.
    fake_rows = bytes(16)
    cache_file_of(chain_binary, tmp_path / "root").write_bytes(
        encode_cache_file(type(real.table).from_packed(fake_rows), real.functions)
    )

    info = load_unwind_info(chain_binary, tmp_path / "root")

    assert info.from_cache is False
    assert info.cache_problem is not None and "writable by other users" in info.cache_problem
    assert info.table.packed == real.table.packed


@needs_root
def test_a_cache_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "perftop" / "unwind"
    directory.mkdir(parents=True)
    os.chown(directory, 65534, 65534)

    with pytest.raises(UnwindCacheError, match="owned by uid 65534"):
        ensure_private_dir(directory)


def test_an_ancestor_writable_by_others_is_refused_unless_sticky(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)

    with pytest.raises(UnwindCacheError, match="writable by other users"):
        ensure_private_dir(shared / "perftop" / "unwind")

    shared.chmod(0o1777)  # like /tmp
    ensure_private_dir(shared / "perftop" / "unwind")
    assert (shared / "perftop" / "unwind").is_dir()


def test_a_symlinked_cache_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "perftop").mkdir()
    (tmp_path / "perftop" / "unwind").symlink_to(tmp_path / "target")

    with pytest.raises(UnwindCacheError, match="not a directory"):
        ensure_private_dir(tmp_path / "perftop" / "unwind")


def test_a_binary_without_build_id_is_built_but_not_cached(tmp_path: Path) -> None:
    binary = compile_chain(tmp_path, "-Wl,--build-id=none")

    info = load_unwind_info(binary, tmp_path / "cache")

    assert info.build_id is None and info.from_cache is False
    assert info.cache_problem == "no GNU build id: not cached"
    assert len(info.table) > 20
    assert not (tmp_path / "cache").exists()


def test_cache_root_is_var_cache_for_root_and_xdg_cache_for_others(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cache.os, "geteuid", lambda: 0)
    assert default_cache_root() == Path("/var/cache/perftop")

    monkeypatch.setattr(cache.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_root() == tmp_path / "xdg" / "perftop"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_root() == tmp_path / "home" / ".cache" / "perftop"


def test_reading_function_starts_creates_no_cache_directory(
    chain_binary: Path, tmp_path: Path
) -> None:
    """A stripped binary's symbols look for cached function starts whatever the unwinder
    (`--unwind fp` too): the look must not create perftop's cache directory."""
    root = tmp_path / "cache"
    assert cache.cached_function_starts("ab" * 20, root) is None
    assert not root.exists()
    # Once the tables are cached, the same look finds them.
    built = load_unwind_info(chain_binary, root)
    assert built.build_id is not None
    found = cache.cached_function_starts(built.build_id.hex(), root)
    assert found is not None and found == built.functions
