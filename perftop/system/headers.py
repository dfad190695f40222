"""Find kernel headers for BCC, assembling a merged tree from the distro's split packages.

BCC compiles the BPF program against kernel headers. When `/lib/modules/$(uname -r)/build` is
missing (a cloud or VM kernel with no headers package), Debian's generic headers still work for
perftop's program, which uses only stable uapi types; but Debian splits them into
`linux-headers-X-common` and `linux-headers-X-<arch>`, which BCC cannot use as two trees. perftop
merges them into a root-owned directory that nobody else can write, and checks it before each use
(BCC's own fallback unpacks headers under a predictable /tmp path: CVE-2024-2314). The tree is
readable by all (it is a copy of world-readable /usr/src), so a user running with CAP_BPF +
CAP_PERFMON uses root's tree; with none there yet, such a user merges into its own cache.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from perftop.system.private_dirs import UnsafeDirectory, check_private_dir, ensure_private_dir

CACHE_ROOT = Path("/var/cache/perftop/headers")
STAMP = ".perftop-merged"

_DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "ppc64le": "ppc64el"}


class HeadersError(Exception):
    """No usable kernel headers; the message says what to install."""


@dataclass(frozen=True, slots=True)
class KernelHeaders:
    path: Path
    description: str  # one line for the user: which headers, and why these
    # Another kernel's (Debian's generic) headers: their struct layouts are not this kernel's.
    generic_for: str | None = None  # the running kernel's release, when generic


def debian_arch() -> str:
    machine = platform.machine()
    return _DEBIAN_ARCH.get(machine, machine)


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def _common_tree(arch_tree: Path) -> Path | None:
    """Debian's arch tree names its common half in its Makefile (`include .../Makefile`)."""
    try:
        makefile = (arch_tree / "Makefile").read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r"^include\s+(\S+)/Makefile\s*$", makefile, re.MULTILINE)
    if match:
        common = Path(match.group(1))
        if common.is_dir():
            return common
    guess = arch_tree.with_name(re.sub(r"-[^-]+$", "-common", arch_tree.name))
    return guess if guess.is_dir() and guess != arch_tree else None


def _ensure_private_dir(path: Path) -> None:
    try:
        ensure_private_dir(path)
    except UnsafeDirectory as error:
        raise HeadersError(str(error)) from None


def _check_private_dir(path: Path) -> None:
    try:
        check_private_dir(path)
    except UnsafeDirectory as error:
        raise HeadersError(str(error)) from None


def merge_trees(arch_tree: Path, common_tree: Path, cache_root: Path = CACHE_ROOT) -> Path:
    """Copy the common tree, then the arch tree over it, into `cache_root/<arch tree name>`.

    Built in a temporary sibling and renamed into place, so a half-copied tree is never used.
    """
    _ensure_private_dir(cache_root)
    target = cache_root / arch_tree.name
    stamp_text = f"{common_tree}\n{arch_tree}\n"
    if os.path.lexists(target):
        _check_private_dir(target)
        try:
            if (target / STAMP).read_text() == stamp_text:
                return target
        except OSError:
            pass
        shutil.rmtree(target)
    # The kbuild symlinks (scripts, tools) point outside the tree and are not needed by BCC.
    skip = shutil.ignore_patterns("scripts", "tools")
    staging = Path(tempfile.mkdtemp(prefix=".merge-", dir=cache_root))
    try:
        shutil.copytree(common_tree, staging, symlinks=True, ignore=skip, dirs_exist_ok=True)
        shutil.copytree(arch_tree, staging, symlinks=True, ignore=skip, dirs_exist_ok=True)
        (staging / STAMP).write_text(stamp_text)
        staging.chmod(0o755)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perftop" / "headers"


def _merge_somewhere(arch_tree: Path, common: Path, cache_root: Path) -> Path:
    """Root's merged tree, or (for a user who may not write it) one in the user's own cache."""
    try:
        return merge_trees(arch_tree, common, cache_root)
    except PermissionError as error:
        if os.geteuid() == 0 or cache_root != CACHE_ROOT:
            raise HeadersError(f"cannot merge kernel headers in {cache_root}: {error}") from None
    try:
        return merge_trees(arch_tree, common, _user_cache())
    except (OSError, RuntimeError) as error:
        raise HeadersError(
            f"no merged kernel headers in {cache_root} and none can be made for this user "
            f"({error}): run perftop once as root, or set BCC_KERNEL_SOURCE"
        ) from None


def locate_headers(
    release: str | None = None,
    modules_root: Path = Path("/lib/modules"),
    source_root: Path = Path("/usr/src"),
    cache_root: Path = CACHE_ROOT,
    arch: str | None = None,
) -> KernelHeaders:
    """The headers BCC should use, merging Debian's split trees when needed."""
    release = release or platform.release()
    arch = arch or debian_arch()
    build = modules_root / release / "build"
    if (build / "include").is_dir():
        return KernelHeaders(build, f"{build.resolve()} (headers of the running kernel)")

    candidates = sorted(
        (
            path
            for path in source_root.glob(f"linux-headers-*-{arch}")
            if path.is_dir() and (path / "include").is_dir()
        ),
        key=lambda path: (path.name == f"linux-headers-{release}", _version_key(path.name)),
        reverse=True,
    )
    for arch_tree in candidates:
        common = _common_tree(arch_tree)
        if common is None:
            continue
        merged = _merge_somewhere(arch_tree, common, cache_root)
        exact = arch_tree.name == f"linux-headers-{release}"
        why = "match the running kernel" if exact else f"generic; running kernel is {release}"
        return KernelHeaders(
            merged,
            f"{arch_tree.name} + {common.name} merged in {merged} ({why})",
            None if exact else release,
        )

    raise HeadersError(
        f"no kernel headers for {release}: install linux-headers-{release}, or where the archive "
        f"lacks it linux-headers-{arch} (`make setup` does this)"
    )
