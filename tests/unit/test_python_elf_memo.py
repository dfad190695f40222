"""Python detection reads each new process's executable: a file read before is not parsed
again, and a file replaced since (another inode, size or mtime) is."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from perftop.python import elf


def test_an_executable_is_parsed_once_until_it_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[int] = []
    parse = elf._parse

    def counted(*args: object) -> elf.ElfImage:
        parsed.append(1)
        return parse(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(elf, "_parse", counted)
    binary = tmp_path / "python"
    shutil.copy(sys.executable, binary)
    first = elf.read_elf(str(binary), ("_PyRuntime",))
    assert elf.read_elf(str(binary), ("_PyRuntime",)) is first
    assert len(parsed) == 1
    assert elf.read_elf(str(binary), ("Py_Version",)) is not first  # other symbols wanted
    assert len(parsed) == 2
    binary.unlink()
    shutil.copy("/bin/true", binary)  # a new file at the same path (an upgrade)
    replaced = elf.read_elf(str(binary), ("_PyRuntime",))
    assert len(parsed) == 3 and "_PyRuntime" not in replaced.symbols
