"""Cgroup v2 plumbing without a real hierarchy: mount tables, /proc/PID/cgroup, the id -> path
resolver over a fake tree, and the --cgroup selection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perftop.system.cgroup_selection import parse_cgroup_selection
from perftop.system.cgroups import (
    NOT_MOUNTED_REASON,
    Cgroup2Mount,
    CgroupResolver,
    CgroupsUnavailable,
    cgroup2_mount_point,
    cgroup2_mount_point_from_mounts,
    cgroup_from_proc_text,
    cgroup_of,
    find_cgroup2_mount,
    is_same_or_descendant,
    walk_cgroups,
)

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw
"""
PURE_V2_MOUNTINFO = (
    "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
)
V1_ONLY_MOUNTINFO = "\n".join(HYBRID_MOUNTINFO.splitlines()[:3]) + "\n"


def test_mount_on_a_hybrid_system_is_the_unified_directory() -> None:
    assert cgroup2_mount_point(HYBRID_MOUNTINFO) == Path("/sys/fs/cgroup/unified")


def test_mount_on_a_pure_v2_system() -> None:
    assert cgroup2_mount_point(PURE_V2_MOUNTINFO) == Path("/sys/fs/cgroup")


def test_v1_only_and_garbage_have_no_mount() -> None:
    assert cgroup2_mount_point(V1_ONLY_MOUNTINFO) is None
    assert cgroup2_mount_point("") is None
    assert cgroup2_mount_point("- cgroup2\n1 2 3 - \ngarbage line\n") is None


def test_mount_point_with_escaped_space() -> None:
    line = r"41 31 0:38 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw" + "\n"
    assert cgroup2_mount_point(line) == Path("/mnt/my cgroups")


def test_mount_from_proc_mounts() -> None:
    mounts = (
        "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
    )
    assert cgroup2_mount_point_from_mounts(mounts) == Path("/sys/fs/cgroup/unified")
    assert cgroup2_mount_point_from_mounts("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n") is None


def _fake_proc(tmp_path: Path, mountinfo: str | None, mounts: str | None = None) -> Path:
    (tmp_path / "self").mkdir()
    if mountinfo is not None:
        (tmp_path / "self" / "mountinfo").write_text(mountinfo)
    if mounts is not None:
        (tmp_path / "mounts").write_text(mounts)
    return tmp_path


def test_find_mount_says_why_there_is_none(tmp_path: Path) -> None:
    assert find_cgroup2_mount(_fake_proc(tmp_path, V1_ONLY_MOUNTINFO)) == CgroupsUnavailable(
        NOT_MOUNTED_REASON
    )
    assert "\n" not in NOT_MOUNTED_REASON


def test_find_mount_falls_back_to_proc_mounts(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, None, "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n")
    assert find_cgroup2_mount(proc) == Cgroup2Mount(Path("/sys/fs/cgroup"))
    assert isinstance(find_cgroup2_mount(tmp_path / "missing"), CgroupsUnavailable)


def test_this_machine_has_a_mount_or_a_reason() -> None:
    assert isinstance(find_cgroup2_mount(), Cgroup2Mount | CgroupsUnavailable)


@pytest.mark.parametrize(
    ("text", "cgroup"),
    [
        ("0::/\n", "/"),
        (
            "12:pids:/user.slice\n1:name=systemd:/x\n0::/system.slice/nginx.service\n",
            "/system.slice/nginx.service",
        ),
        ("0::/odd:name:with:colons\n", "/odd:name:with:colons"),
        ("0::/trailing space \n", "/trailing space "),
        ("1:cpu:/\n0::/new\nline\n", "/new\nline"),
        ("0::/x\n0::/fake\n", "/x\n0::/fake"),  # a v2 name cannot fake a second v2 line
        ("1:cpu:/\n0::relative\n", None),
        ("4:memory:/a\n1:cpu:/\n", None),  # v1 only
        ("", None),
        ("0:cpu:/not-v2\n", None),
    ],
)
def test_cgroup_from_proc_text(text: str, cgroup: str | None) -> None:
    assert cgroup_from_proc_text(text) == cgroup


def test_cgroup_of_an_exited_or_odd_pid_is_none(tmp_path: Path) -> None:
    assert cgroup_of(2**22 + 12345) is None
    assert cgroup_of(1, proc=tmp_path) is None


def test_cgroup_of_this_process_is_a_path() -> None:
    cgroup = cgroup_of(os.getpid())
    assert cgroup is None or cgroup.startswith("/")


@pytest.mark.parametrize(
    ("cgroup", "ancestor", "expected"),
    [
        ("/a/b", "/a", True),
        ("/a", "/a", True),
        ("/a/bc", "/a/b", False),
        ("/ab", "/a", False),
        ("/anything", "/", True),
        ("/", "/a", False),
    ],
)
def test_descendant_by_components(cgroup: str, ancestor: str, expected: bool) -> None:
    assert is_same_or_descendant(cgroup, ancestor) is expected


def _tree(root: Path, *cgroups: str) -> dict[str, int]:
    """A fake cgroup hierarchy of plain directories, each with a cgroup.procs; path -> inode."""
    (root / "cgroup.procs").write_text("")
    ids = {"/": root.stat().st_ino}
    for cgroup in cgroups:
        components = cgroup.strip("/").split("/")
        for depth in range(1, len(components) + 1):
            prefix = "/" + "/".join(components[:depth])
            directory = root / prefix.lstrip("/")
            directory.mkdir(exist_ok=True)
            (directory / "cgroup.procs").write_text("")
            ids[prefix] = directory.stat().st_ino
    return ids


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_walk_finds_every_directory_and_no_files_or_symlinks(tmp_path: Path) -> None:
    ids = _tree(tmp_path, "/a", "/a/b", "/c")
    os.symlink(tmp_path / "a", tmp_path / "c" / "link")
    walk = walk_cgroups(tmp_path)
    assert walk.paths_by_id == {inode: path for path, inode in ids.items()}
    assert not walk.truncated


def test_walk_bounds_depth_and_count_keeping_the_shallow_ones(tmp_path: Path) -> None:
    ids = _tree(tmp_path, "/a/b/c/d", "/x")
    shallow = walk_cgroups(tmp_path, max_depth=2)
    assert set(shallow.paths_by_id.values()) == {"/", "/a", "/x", "/a/b"}
    assert shallow.truncated
    few = walk_cgroups(tmp_path, max_cgroups=3)
    assert len(few.paths_by_id) == 3 and few.truncated
    assert ids["/"] in few.paths_by_id


def test_walk_of_a_missing_mount_is_empty(tmp_path: Path) -> None:
    assert walk_cgroups(tmp_path / "gone").paths_by_id == {}


def test_resolver_refreshes_for_a_new_id_at_most_once_a_second(tmp_path: Path) -> None:
    ids = _tree(tmp_path, "/a")
    clock = FakeClock()
    resolver = CgroupResolver(tmp_path, clock=clock)
    assert resolver.path_of(ids["/a"]) == "/a"
    new = _tree(tmp_path, "/b")["/b"]
    clock.now += 0.5
    assert resolver.path_of(new) is None  # rate-limited: the last walk was half a second ago
    clock.now += 0.6
    assert resolver.path_of(new) == "/b"
    assert resolver.path_of(123456789) is None  # unknown ids are not an error


def test_resolver_keeps_a_removed_cgroup_a_while_then_forgets_it(tmp_path: Path) -> None:
    ids = _tree(tmp_path, "/gone", "/stays")
    clock = FakeClock()
    resolver = CgroupResolver(tmp_path, clock=clock, retain_removed_seconds=5.0)
    resolver.refresh()
    (tmp_path / "gone" / "cgroup.procs").unlink()
    (tmp_path / "gone").rmdir()
    clock.now += 2
    resolver.refresh_if_due()  # once per interval, as the session does
    assert resolver.path_of(ids["/gone"]) == "/gone"  # still named: its last counts may arrive
    assert resolver.is_removed(ids["/gone"])
    clock.now += 3
    resolver.refresh_if_due()
    assert resolver.path_of(ids["/gone"]) == "/gone"  # 3 s after it was noticed gone
    clock.now += 2
    resolver.refresh_if_due()
    assert not resolver.is_removed(ids["/gone"])
    assert resolver.path_of(ids["/gone"]) is None
    assert resolver.path_of(ids["/stays"]) == "/stays"


def test_resolver_ancestor_ids(tmp_path: Path) -> None:
    ids = _tree(tmp_path, "/a/b/c")
    resolver = CgroupResolver(tmp_path)
    assert resolver.ancestor_ids(ids["/a/b/c"]) == (ids["/"], ids["/a"], ids["/a/b"], ids["/a/b/c"])
    assert resolver.ancestor_ids(ids["/"]) == (ids["/"],)
    assert resolver.ancestor_ids(987654321) == ()


def test_ancestor_ids_of_a_path_made_again_are_the_live_ones(tmp_path: Path) -> None:
    old = _tree(tmp_path, "/a/b")
    clock = FakeClock()
    resolver = CgroupResolver(tmp_path, clock=clock)
    resolver.refresh()
    # Open descriptors keep the old inodes allocated, so tmpfs cannot hand the numbers out again
    # (kernfs allocates its ids cyclically, so a real hierarchy does not reuse them soon).
    held = [os.open(tmp_path / cgroup.lstrip("/"), os.O_RDONLY) for cgroup in ("/a/b", "/a")]
    try:
        for cgroup in ("/a/b", "/a"):
            (tmp_path / cgroup.lstrip("/") / "cgroup.procs").unlink()
            (tmp_path / cgroup.lstrip("/")).rmdir()
        new = _tree(tmp_path, "/a/b")
    finally:
        for descriptor in held:
            os.close(descriptor)
    assert new["/a"] != old["/a"]
    clock.now += 1
    resolver.refresh()
    assert resolver.is_removed(old["/a"])
    assert resolver.ancestor_ids(new["/a/b"]) == (new["/"], new["/a"], new["/a/b"])


def test_selection_relative_absolute_and_proc_style(tmp_path: Path) -> None:
    ids = _tree(tmp_path, "/a/b", "/c")
    selection = parse_cgroup_selection(f"a/b,{tmp_path}/c,/a/b", tmp_path)
    assert selection.paths == ("/a/b", "/c")
    assert selection.ids == {ids["/a/b"], ids["/c"]}
    assert parse_cgroup_selection(str(tmp_path), tmp_path).paths == ("/",)


def test_selection_contains_descendants_only(tmp_path: Path) -> None:
    ids = _tree(tmp_path, "/a/b/deep", "/a/bc")
    selection = parse_cgroup_selection("a/b", tmp_path)
    resolver = CgroupResolver(tmp_path)
    assert selection.contains_id(ids["/a/b"], resolver)
    assert selection.contains_id(ids["/a/b/deep"], resolver)
    assert not selection.contains_id(ids["/a/bc"], resolver)
    assert not selection.contains_id(ids["/a"], resolver)
    assert not selection.contains_id(424242424242, resolver)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("nope", "no such cgroup"),
        ("a,", "empty path"),
        ("", "empty path"),
        ("plain", "not a cgroup (no cgroup.procs"),
        ("afile", "not a cgroup directory"),
        ("link", "not a cgroup directory"),
        ("../../../etc", "no such cgroup"),
        ("evil\x1b[2J", "no such cgroup"),
    ],
)
def test_selection_of_bad_paths_is_one_line(tmp_path: Path, argument: str, message: str) -> None:
    _tree(tmp_path, "/a")
    (tmp_path / "plain").mkdir()
    (tmp_path / "afile").write_text("")
    os.symlink(tmp_path / "a", tmp_path / "link")
    with pytest.raises(ValueError, match=r"^--cgroup ") as raised:
        parse_cgroup_selection(argument, tmp_path)
    text = str(raised.value)
    assert message in text
    assert "\n" not in text and "\x1b" not in text
