"""Writing a profile file: never through a symlink, never over a file unless asked."""

from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path

import pytest

from perftop.formats.exports import ProfileMeta
from perftop.formats.files import (
    ExportError,
    ExportExists,
    encode,
    open_export,
    write_export,
)
from perftop.formats.registry import EXPORT_FORMATS
from tests.unit.factories import kernel, stack, user

STACKS = (
    stack(user("main"), user("work"), samples=3),
    stack(user("main"), kernel("do_syscall_64"), samples=1),
    stack(user("evil;[/]\x1b[31m"), comm="x\x1b]0;t\x07", pid=7, samples=2),
)
META = ProfileMeta(event="cpu-clock", frequency_hz=99, duration_s=1.0, start_time=1_700_000_000.0)


@pytest.mark.parametrize("export_format", EXPORT_FORMATS)
def test_a_new_file_holds_the_encoded_profile(tmp_path: Path, export_format: str) -> None:
    path = tmp_path / f"out.{export_format}"
    written = write_export(path, export_format, STACKS, META)
    content = path.read_bytes()
    assert written == len(content) > 0
    assert content == encode(export_format, STACKS, META)
    assert stat.S_IMODE(path.stat().st_mode) & 0o022 == 0  # nobody else may change it


def test_each_format_is_what_its_readers_expect(tmp_path: Path) -> None:
    folded = encode("folded", STACKS, META).decode()
    assert "app;main;work 3\n" in folded
    assert "app;main;do_syscall_64_[k] 1\n" in folded
    # Printable, and no ';' inside a frame: a name cannot add frames or escape to the terminal.
    assert "x\\x1b]0:t\\x07;evil:[/]\\x1b[31m 2\n" in folded
    assert "\x1b" not in folded
    document = json.loads(encode("speedscope", STACKS, META))
    assert document["shared"]["frames"][0] == {"name": "main", "file": "app"}
    assert gzip.decompress(encode("pprof", STACKS, META))  # a gzip stream, as pprof reads it
    with pytest.raises(ValueError, match="unknown export format"):
        encode("svg", STACKS, META)


def test_an_existing_file_is_kept_unless_the_user_asks(tmp_path: Path) -> None:
    path = tmp_path / "out.folded"
    path.write_text("keep me, I am longer than the profile " * 100)
    with pytest.raises(ExportExists, match="already exists"):
        write_export(path, "folded", STACKS, META)
    assert path.read_text().startswith("keep me")
    write_export(path, "folded", STACKS, META, overwrite=True)
    assert path.read_bytes() == encode("folded", STACKS, META)  # replaced whole, no old tail


@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
@pytest.mark.parametrize("target_exists", [True, False], ids=["target", "dangling"])
def test_a_symlink_is_never_followed(tmp_path: Path, overwrite: bool, target_exists: bool) -> None:
    target = tmp_path / "precious"
    if target_exists:
        target.write_text("precious")
    link = tmp_path / "out.pb.gz"
    link.symlink_to(target)
    with pytest.raises(ExportError, match="symlink: perftop never writes through one") as error:
        write_export(link, "pprof", STACKS, META, overwrite=overwrite)
    assert not isinstance(error.value, ExportExists)  # no "replace it?" question for a link
    assert link.is_symlink()
    if target_exists:
        assert target.read_text() == "precious"
    else:
        assert not target.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's file needs root")
def test_a_symlink_planted_by_another_user_in_a_shared_directory(tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: anyone may create, only owners may remove
    precious = tmp_path / "shadow"
    precious.write_text("root:*:19000:0:99999:7:::\n")
    planted = shared / "perftop-profile.folded"
    planted.symlink_to(precious)
    os.lchown(planted, 65534, 65534)  # nobody's
    for overwrite in (False, True):
        with pytest.raises(ExportError, match="symlink"):
            write_export(planted, "folded", STACKS, META, overwrite=overwrite)
    assert precious.read_text() == "root:*:19000:0:99999:7:::\n"


def test_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="is a directory"):
        write_export(tmp_path, "folded", STACKS, META)
    with pytest.raises(ExportError, match="is a directory"):
        write_export(tmp_path, "folded", STACKS, META, overwrite=True)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ExportError, match="not a regular file"):
        write_export(fifo, "folded", STACKS, META)
    # Opening a FIFO nobody reads would block forever without O_NONBLOCK.
    with pytest.raises(ExportError, match="not a regular file"):
        write_export(fifo, "folded", STACKS, META, overwrite=True)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"no directory .*nowhere"):
        write_export(tmp_path / "nowhere" / "out.folded", "folded", STACKS, META)


def test_a_failed_write_leaves_no_half_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FullDisk:
        def __init__(self, path: Path) -> None:
            self.handle = open_export(path)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(
        "perftop.formats.files.open_export", lambda path, overwrite=False: FullDisk(path)
    )
    path = tmp_path / "out.pb.gz"
    with pytest.raises(ExportError, match="No space left on device"):
        write_export(path, "pprof", STACKS, META)
    assert not path.exists()
