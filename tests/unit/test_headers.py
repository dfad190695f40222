from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from perftop.system.headers import STAMP, HeadersError, locate_headers


def debian_headers(root: Path, version: str = "6.1.0-56", arch: str = "amd64") -> Path:
    common = root / f"linux-headers-{version}-common"
    arch_tree = root / f"linux-headers-{version}-{arch}"
    (common / "include/linux").mkdir(parents=True)
    (common / "include/linux/kconfig.h").write_text("common")
    (common / "arch/x86/include/asm").mkdir(parents=True)
    (arch_tree / "include/generated").mkdir(parents=True)
    (arch_tree / "include/generated/autoconf.h").write_text("arch")
    (arch_tree / "arch/x86/include/generated").mkdir(parents=True)
    (arch_tree / "Makefile").write_text(f"include {common}/Makefile\n")
    (arch_tree / "scripts").symlink_to("../../lib/linux-kbuild/scripts")
    return arch_tree


def test_build_dir_of_running_kernel_wins(tmp_path: Path) -> None:
    build = tmp_path / "modules/6.18.0/build"
    (build / "include").mkdir(parents=True)
    headers = locate_headers("6.18.0", tmp_path / "modules", tmp_path / "src", tmp_path / "cache")
    assert headers.path == build and "running kernel" in headers.description


def test_split_debian_trees_are_merged_privately(tmp_path: Path) -> None:
    debian_headers(tmp_path / "src")
    cache = tmp_path / "cache/headers"
    headers = locate_headers("6.18.0", tmp_path / "modules", tmp_path / "src", cache, "amd64")
    merged = headers.path
    assert merged.parent == cache
    assert (merged / "include/linux/kconfig.h").read_text() == "common"
    assert (merged / "include/generated/autoconf.h").read_text() == "arch"
    assert (merged / "arch/x86/include/asm").is_dir()
    assert (merged / "arch/x86/include/generated").is_dir()
    assert not (merged / "scripts").exists()
    assert (merged / STAMP).is_file()
    assert "linux-headers-6.1.0-56-amd64 + linux-headers-6.1.0-56-common" in headers.description
    assert "generic" in headers.description
    # Readable by all (least-privilege users compile with it), writable by its owner alone.
    assert stat.S_IMODE(cache.stat().st_mode) == 0o755
    assert stat.S_IMODE(merged.stat().st_mode) == 0o755
    again = locate_headers("6.18.0", tmp_path / "modules", tmp_path / "src", cache, "amd64")
    assert again.path == merged


def test_a_tree_writable_by_others_is_refused(tmp_path: Path) -> None:
    debian_headers(tmp_path / "src")
    cache = tmp_path / "cache/headers"
    merged = locate_headers("6.18.0", tmp_path / "m", tmp_path / "src", cache, "amd64").path
    os.chmod(merged, 0o777)
    with pytest.raises(HeadersError, match="writable by other users"):
        locate_headers("6.18.0", tmp_path / "m", tmp_path / "src", cache, "amd64")


def test_a_planted_symlink_is_refused(tmp_path: Path) -> None:
    debian_headers(tmp_path / "src")
    cache = tmp_path / "cache/headers"
    cache.mkdir(parents=True, mode=0o700)
    (cache / "linux-headers-6.1.0-56-amd64").symlink_to(tmp_path)
    with pytest.raises(HeadersError, match="symlink"):
        locate_headers("6.18.0", tmp_path / "m", tmp_path / "src", cache, "amd64")


def test_no_headers_at_all_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(HeadersError) as error:
        locate_headers("6.18.0", tmp_path / "m", tmp_path / "src", tmp_path / "c", "amd64")
    assert "install linux-headers-6.18.0" in str(error.value)
    assert "linux-headers-amd64" in str(error.value)


def test_an_old_private_cache_is_opened_to_readers(tmp_path: Path) -> None:
    """Earlier perftops made the cache 0700; other users with CAP_BPF could not read it."""
    debian_headers(tmp_path / "src")
    cache = tmp_path / "cache/headers"
    cache.mkdir(parents=True, mode=0o700)
    cache.parent.chmod(0o700)
    locate_headers("6.18.0", tmp_path / "m", tmp_path / "src", cache, "amd64")
    assert stat.S_IMODE(cache.stat().st_mode) == stat.S_IMODE(cache.parent.stat().st_mode) == 0o755


def test_a_tree_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    debian_headers(tmp_path / "src")
    cache = tmp_path / "cache/headers"
    cache.mkdir(parents=True)
    os.chown(cache, 65534, 65534)  # the tests run as root: this is someone else's
    with pytest.raises(HeadersError, match="owned by uid 65534"):
        locate_headers("6.18.0", tmp_path / "m", tmp_path / "src", cache, "amd64")


def test_another_kernels_headers_are_marked_generic(tmp_path: Path) -> None:
    """What `perftop doctor` warns about: 6.1 generic headers on a 6.18 kernel."""
    debian_headers(tmp_path / "src")
    cache = tmp_path / "cache/headers"
    headers = locate_headers("6.18.0", tmp_path / "modules", tmp_path / "src", cache, "amd64")
    assert headers.generic_for == "6.18.0"
    build = tmp_path / "modules/6.18.0/build"
    (build / "include").mkdir(parents=True)
    exact = locate_headers("6.18.0", tmp_path / "modules", tmp_path / "src", cache, "amd64")
    assert exact.generic_for is None
