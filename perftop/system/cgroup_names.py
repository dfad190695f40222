"""Readable names for cgroup paths: the systemd unit, the container, the Kubernetes pod.

The rules follow what the managers write (systemd.unit(5) and the container runtimes' cgroup
drivers) and what htop and cAdvisor recognise:

- systemd: `…/nginx.service`, `…/session-3.scope`, `…/user@1000.service`, `…/machine.slice`;
- docker: `docker-<64 hex>.scope` (systemd driver) or `/docker/<64 hex>` (cgroupfs driver);
- containerd (CRI): `cri-containerd-<64 hex>.scope`; CRI-O: `crio-<64 hex>.scope`;
  podman: `libpod-<64 hex>.scope`; conmon, the monitor beside a CRI-O or podman container, is
  `crio-conmon-…` or `libpod-conmon-…` and is not the container itself;
- Kubernetes: `kubepods-<qos>-pod<uid with _ for ->.slice` (systemd driver) or
  `/kubepods/<qos>/pod<uid>/` (cgroupfs driver), with the container's cgroup below the pod's.

Everything here is a pure function of the path except the docker name lookup, which reads
`/var/lib/docker/containers/<id>/config.v2.json`. Names are returned literally: the screen and the
text output make them printable.
"""

from __future__ import annotations

import enum
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from perftop.system.cgroups import ROOT_CGROUP

DOCKER_CONTAINERS = Path("/var/lib/docker/containers")
# A docker config.v2.json is a few kilobytes; a bigger one is not worth parsing every refresh.
MAX_CONFIG_BYTES = 1 << 20
SHORT_ID_LENGTH = 12

_CONTAINER_ID = "[0-9a-f]{64}"
# (runtime, pattern of one path component) for the systemd-driver scopes.
_CONTAINER_SCOPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("docker", re.compile(rf"docker-({_CONTAINER_ID})\.scope")),
    ("containerd", re.compile(rf"cri-containerd-({_CONTAINER_ID})\.scope")),
    ("crio", re.compile(rf"crio-({_CONTAINER_ID})\.scope")),
    ("podman", re.compile(rf"libpod-({_CONTAINER_ID})\.scope")),
)
_BARE_CONTAINER_ID = re.compile(_CONTAINER_ID)
_POD_SLICE = re.compile(
    r"kubepods(?:-[a-z]+)*-pod([0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12})\.slice"
)
_POD_DIRECTORY = re.compile(r"pod([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
# The cgroup-bearing unit types (systemd.unit(5)): services, scopes and slices.
_UNIT_SUFFIXES = (".service", ".scope", ".slice")


class CgroupKind(enum.Enum):
    ROOT = "root"
    SYSTEMD_UNIT = "unit"
    CONTAINER = "container"
    KUBERNETES_POD = "pod"
    PLAIN = "path"


@dataclass(frozen=True, slots=True)
class ContainerIdentity:
    runtime: str | None  # "docker", "containerd", "crio", "podman"; None if only the id says so
    container_id: str  # 64 hex

    @property
    def short_id(self) -> str:
        return self.container_id[:SHORT_ID_LENGTH]


@dataclass(frozen=True, slots=True)
class CgroupName:
    """What a cgroup is, found from its path. `label` is the one string a row shows."""

    cgroup: str
    kind: CgroupKind
    label: str
    unit: str | None = None
    container: ContainerIdentity | None = None
    container_name: str | None = None
    pod_uid: str | None = None


def container_in_path(cgroup: str) -> ContainerIdentity | None:
    """The deepest container a path lies in (a container may run its own sub-cgroups, such as
    systemd's init.scope inside it), or None."""
    components = cgroup.strip("/").split("/")
    for index in range(len(components) - 1, -1, -1):
        component = components[index]
        for runtime, pattern in _CONTAINER_SCOPES:
            match = pattern.fullmatch(component)
            if match:
                return ContainerIdentity(runtime, match.group(1))
        if _BARE_CONTAINER_ID.fullmatch(component):
            parent = components[index - 1] if index > 0 else ""
            if parent == "docker":
                return ContainerIdentity("docker", component)
            # Under a cgroupfs-driver pod directory the runtime is not in the path.
            if _POD_DIRECTORY.fullmatch(parent):
                return ContainerIdentity(None, component)
    return None


def pod_uid_in_path(cgroup: str) -> str | None:
    """The Kubernetes pod UID (with dashes) of a path in a pod's cgroup, or None."""
    for component in reversed(cgroup.strip("/").split("/")):
        match = _POD_SLICE.fullmatch(component)
        if match:
            return match.group(1).replace("_", "-")
        match = _POD_DIRECTORY.fullmatch(component)
        if match and "kubepods" in cgroup:
            return match.group(1)
    return None


def unit_in_path(cgroup: str) -> str | None:
    """The deepest systemd unit in a path (`…/user@1000.service/app.slice/x.service` is
    `x.service`), or None."""
    for component in reversed(cgroup.strip("/").split("/")):
        if any(component.endswith(suffix) and component != suffix for suffix in _UNIT_SUFFIXES):
            return component
    return None


def name_from_path(cgroup: str) -> CgroupName:
    """A cgroup's name from its path alone: container first (its scope is also a unit), then the
    pod, then the unit, else the path itself."""
    if cgroup == ROOT_CGROUP:
        return CgroupName(cgroup, CgroupKind.ROOT, ROOT_CGROUP)
    container = container_in_path(cgroup)
    pod_uid = pod_uid_in_path(cgroup)
    unit = unit_in_path(cgroup)
    if container is not None:
        return CgroupName(
            cgroup, CgroupKind.CONTAINER, container.short_id, unit, container, None, pod_uid
        )
    if pod_uid is not None:
        return CgroupName(
            cgroup, CgroupKind.KUBERNETES_POD, f"pod {pod_uid}", unit, None, None, pod_uid
        )
    if unit is not None:
        return CgroupName(cgroup, CgroupKind.SYSTEMD_UNIT, unit, unit)
    return CgroupName(cgroup, CgroupKind.PLAIN, cgroup)


def docker_name_from_config(config_text: str) -> str | None:
    """The container name in a docker `config.v2.json` (`"Name": "/web"`), without docker's
    leading "/"; None if the file is not that shape."""
    try:
        config = json.loads(config_text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(config, dict):
        return None
    name = config.get("Name")
    if not isinstance(name, str) or not name.strip("/"):
        return None
    return name[1:] if name.startswith("/") else name


def _read_small_file_no_symlinks(directory: Path, *components: str) -> str | None:
    """A regular file below `directory`, opened component by component with O_NOFOLLOW so a
    symlink planted in the runtime's tree is never followed; None if absent, odd or too big."""
    descriptors: list[int] = []
    try:
        current = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        descriptors.append(current)
        for component in components[:-1]:
            current = os.open(
                component,
                os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                dir_fd=current,
            )
            descriptors.append(current)
        file_descriptor = os.open(
            components[-1],
            os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            dir_fd=current,
        )
        descriptors.append(file_descriptor)
        status = os.fstat(file_descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_CONFIG_BYTES:
            return None
        # Read one byte past the limit: the file may have grown since fstat.
        data = os.read(file_descriptor, MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            return None
        return data.decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


class ContainerNames:
    """Container names from the runtimes' own files, cached per container id. Only docker keeps
    its names in a file per container; other runtimes leave the name None."""

    def __init__(self, docker_containers: Path = DOCKER_CONTAINERS) -> None:
        self._docker_containers = docker_containers
        self._names: dict[str, str | None] = {}

    def name_of(self, container: ContainerIdentity) -> str | None:
        if container.runtime != "docker":
            return None
        if container.container_id in self._names:
            return self._names[container.container_id]
        # The id is 64 hex (checked by the path patterns), so it is a safe single component.
        text = _read_small_file_no_symlinks(
            self._docker_containers, container.container_id, "config.v2.json"
        )
        name = None if text is None else docker_name_from_config(text)
        self._names[container.container_id] = name
        return name

    def forget(self, container_id: str) -> None:
        """Drop a cached name (the container was removed; a new one may reuse nothing but this
        cache entry would grow forever otherwise)."""
        self._names.pop(container_id, None)


def describe_cgroup(cgroup: str, container_names: ContainerNames | None = None) -> CgroupName:
    """The name of a cgroup, with the container's own name where its runtime's files give one."""
    name = name_from_path(cgroup)
    if name.container is None or container_names is None:
        return name
    container_name = container_names.name_of(name.container)
    if container_name is None:
        return name
    return CgroupName(
        name.cgroup,
        name.kind,
        container_name,
        name.unit,
        name.container,
        container_name,
        name.pod_uid,
    )
