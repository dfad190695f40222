"""Readable cgroup names from paths: units, containers, pods; hostile names kept literally."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from perftop.system.cgroup_names import (
    MAX_CONFIG_BYTES,
    CgroupKind,
    ContainerIdentity,
    ContainerNames,
    describe_cgroup,
    docker_name_from_config,
    name_from_path,
)

DOCKER_ID = "3f4e2b1a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
OTHER_ID = "0123456789abcdef" * 4
POD_UID = "1b2c3d4e-5f60-4718-89ab-cdef01234567"


def test_root_is_its_own_name() -> None:
    name = name_from_path("/")
    assert (name.kind, name.label) == (CgroupKind.ROOT, "/")


@pytest.mark.parametrize(
    ("cgroup", "unit"),
    [
        ("/system.slice/nginx.service", "nginx.service"),
        ("/user.slice/user-1000.slice/user@1000.service", "user@1000.service"),
        ("/user.slice/user-1000.slice/session-3.scope", "session-3.scope"),
        ("/machine.slice", "machine.slice"),
        # The deepest unit names the cgroup: an app's service inside the user manager.
        ("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", "foo.service"),
        # A service's own sub-cgroup (delegated subtree) still belongs to the service.
        ("/system.slice/nginx.service/worker", "nginx.service"),
        # systemd's escapes are part of the name; kept literally.
        (r"/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service"),
        (r"/system.slice/dev-disk-by\x2duuid.swap.slice", r"dev-disk-by\x2duuid.swap.slice"),
    ],
)
def test_systemd_units(cgroup: str, unit: str) -> None:
    name = name_from_path(cgroup)
    assert (name.kind, name.label, name.unit, name.container) == (
        CgroupKind.SYSTEMD_UNIT,
        unit,
        unit,
        None,
    )


@pytest.mark.parametrize(
    ("cgroup", "runtime", "container_id"),
    [
        (f"/system.slice/docker-{DOCKER_ID}.scope", "docker", DOCKER_ID),
        (f"/docker/{DOCKER_ID}", "docker", DOCKER_ID),
        (f"/system.slice/cri-containerd-{OTHER_ID}.scope", "containerd", OTHER_ID),
        (f"/machine.slice/libpod-{OTHER_ID}.scope", "podman", OTHER_ID),
        # rootless podman: the container's own sub-cgroup below its scope, in the user manager
        (
            f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{OTHER_ID}.scope"
            "/container",
            "podman",
            OTHER_ID,
        ),
        # systemd running inside the container: its init.scope is still that container.
        (f"/system.slice/docker-{DOCKER_ID}.scope/init.scope", "docker", DOCKER_ID),
    ],
)
def test_containers_show_the_short_id(cgroup: str, runtime: str, container_id: str) -> None:
    name = name_from_path(cgroup)
    assert name.kind is CgroupKind.CONTAINER
    assert name.container == ContainerIdentity(runtime, container_id)
    assert name.label == container_id[:12]
    assert len(name.label) == 12


def test_crio_container_in_a_kubernetes_pod_has_the_pod_uid() -> None:
    pod_slice = f"kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice"
    cgroup = f"/kubepods.slice/kubepods-burstable.slice/{pod_slice}/crio-{OTHER_ID}.scope"
    name = name_from_path(cgroup)
    assert name.kind is CgroupKind.CONTAINER
    assert name.container == ContainerIdentity("crio", OTHER_ID)
    assert name.pod_uid == POD_UID


def test_conmon_is_not_the_container() -> None:
    name = name_from_path(f"/machine.slice/libpod-conmon-{OTHER_ID}.scope")
    assert name.container is None
    assert name.kind is CgroupKind.SYSTEMD_UNIT


def test_kubernetes_pod_slice_without_a_container_is_the_pod() -> None:
    pod_slice = f"kubepods-besteffort-pod{POD_UID.replace('-', '_')}.slice"
    name = name_from_path(f"/kubepods.slice/kubepods-besteffort.slice/{pod_slice}")
    assert (name.kind, name.pod_uid, name.label) == (
        CgroupKind.KUBERNETES_POD,
        POD_UID,
        f"pod {POD_UID}",
    )


def test_kubernetes_cgroupfs_driver_pod_and_container() -> None:
    name = name_from_path(f"/kubepods/burstable/pod{POD_UID}/{OTHER_ID}")
    assert name.pod_uid == POD_UID
    # The cgroupfs driver does not say which runtime made the container.
    assert name.container == ContainerIdentity(None, OTHER_ID)
    assert name.label == OTHER_ID[:12]


@pytest.mark.parametrize(
    "cgroup",
    [
        "/perftop-test/a",
        "/docker",  # the docker parent itself is no container
        f"/docker/{DOCKER_ID[:63]}",  # one hex short
        f"/elsewhere/{DOCKER_ID}",  # 64 hex under something that is not docker or a pod
        f"/pod{POD_UID}",  # a pod-looking name outside kubepods
        "/.service",  # a bare suffix is no unit
    ],
)
def test_anything_else_is_the_path(cgroup: str) -> None:
    name = name_from_path(cgroup)
    assert (name.kind, name.label, name.container, name.pod_uid) == (
        CgroupKind.PLAIN,
        cgroup,
        None,
        None,
    )


@pytest.mark.parametrize(
    "hostile",
    [
        "evil\x1b[31mred\x1b[0m",
        "[bold]markup[\\bold]",
        "new\nline",
        "bidi\u202eexe.txt",
        "\udcff-not-utf8",
    ],
)
def test_hostile_names_are_kept_literally(hostile: str) -> None:
    assert name_from_path("/" + hostile).label == "/" + hostile
    unit = hostile + ".service"
    assert name_from_path("/system.slice/" + unit).label == unit


def test_docker_name_from_config() -> None:
    assert docker_name_from_config(json.dumps({"ID": DOCKER_ID, "Name": "/web"})) == "web"
    assert docker_name_from_config(json.dumps({"Name": "no-slash"})) == "no-slash"
    hostile = "/\x1b]0;pwned\x07[red]x"
    assert docker_name_from_config(json.dumps({"Name": hostile})) == hostile[1:]


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", "null", '{"Name": 3}', '{"Name": "/"}', '{"Other": "x"}', "[" * 100_000],
)
def test_docker_config_that_is_not_the_shape_has_no_name(text: str) -> None:
    assert docker_name_from_config(text) is None


def _docker_tree(root: Path, container_id: str, content: bytes) -> Path:
    directory = root / container_id
    directory.mkdir(parents=True)
    (directory / "config.v2.json").write_bytes(content)
    return directory


def test_docker_name_is_read_from_the_runtime_files(tmp_path: Path) -> None:
    _docker_tree(tmp_path, DOCKER_ID, json.dumps({"Name": "/web"}).encode())
    names = ContainerNames(tmp_path)
    described = describe_cgroup(f"/system.slice/docker-{DOCKER_ID}.scope", names)
    assert (described.label, described.container_name) == ("web", "web")
    # Cached: removing the file does not change the answer until the entry is forgotten.
    (tmp_path / DOCKER_ID / "config.v2.json").unlink()
    assert describe_cgroup(f"/docker/{DOCKER_ID}", names).label == "web"
    names.forget(DOCKER_ID)
    assert describe_cgroup(f"/docker/{DOCKER_ID}", names).label == DOCKER_ID[:12]


def test_docker_name_absent_corrupt_or_huge_falls_back_to_the_short_id(tmp_path: Path) -> None:
    _docker_tree(tmp_path, OTHER_ID, b"\xff\xfe not json")
    big = DOCKER_ID.replace("3", "4")
    _docker_tree(tmp_path, big, b'{"Name": "/big", "pad": "' + b"x" * MAX_CONFIG_BYTES + b'"}')
    names = ContainerNames(tmp_path)
    for container_id in (OTHER_ID, big, DOCKER_ID):  # DOCKER_ID has no directory at all
        assert describe_cgroup(f"/docker/{container_id}", names).label == container_id[:12]
    assert (
        describe_cgroup(f"/docker/{DOCKER_ID}", ContainerNames(tmp_path / "none")).label
        == (DOCKER_ID[:12])
    )


def test_docker_name_behind_a_symlink_is_not_followed(tmp_path: Path) -> None:
    elsewhere = _docker_tree(tmp_path / "elsewhere", "real", json.dumps({"Name": "/x"}).encode())
    containers = tmp_path / "containers"
    containers.mkdir()
    os.symlink(elsewhere, containers / DOCKER_ID)
    linked_file_id = OTHER_ID
    (containers / linked_file_id).mkdir()
    os.symlink(elsewhere / "config.v2.json", containers / linked_file_id / "config.v2.json")
    names = ContainerNames(containers)
    assert describe_cgroup(f"/docker/{DOCKER_ID}", names).container_name is None
    assert describe_cgroup(f"/docker/{linked_file_id}", names).container_name is None


def test_only_docker_has_name_files(tmp_path: Path) -> None:
    _docker_tree(tmp_path, OTHER_ID, json.dumps({"Name": "/web"}).encode())
    described = describe_cgroup(f"/system.slice/crio-{OTHER_ID}.scope", ContainerNames(tmp_path))
    assert (described.label, described.container_name) == (OTHER_ID[:12], None)
