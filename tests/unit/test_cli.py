"""Bad input: one clear line on stderr, a non-zero exit, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perftop.cli.main import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-d", "0"], "interval must be > 0"),
        (["-d", "-1"], "interval must be > 0"),
        (["-d", "soon"], "is not a number of seconds"),
        (["-F", "0"], "frequency must be between 1 and"),
        (["-F", "10000000"], "frequency must be between 1 and"),
        (["-F", "fast"], "is not a whole number of Hz"),
        (["-p", "abc"], "'abc' is not a PID"),
        (["-p", "-5"], "'-5' is not a PID"),
        (["-p", "4194305"], "no process with PID 4194305"),
        (["-e", "bogus"], "unknown event 'bogus'"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--stacks", "sideways"], "invalid choice: 'sideways'"),
        (["-n", "0"], "iterations must be at least 1"),
        (["--replay", "/nonexistent/rec.jsonl"], "no recording at"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_value_is_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--batch", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("perftop: ") and message in lines[0]


def test_output_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--batch", "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_output_never_replaced_or_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "out.txt"
    existing.write_text("keep")
    assert main(["--batch", "-o", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err
    link = tmp_path / "link"
    os.symlink(tmp_path / "target", link)
    assert main(["--batch", "-o", str(link), "--force"]) == 2
    assert "symlink" in capsys.readouterr().err
    assert existing.read_text() == "keep"


def test_not_root_without_capabilities(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("perftop.system.privileges.os.geteuid", lambda: 1000)
    monkeypatch.setattr("perftop.system.privileges.effective_capabilities", lambda *a: 0)
    assert main(["--batch", "-n", "1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["perftop: neither root nor CAP_BPF + CAP_PERFMON: run with sudo"]
