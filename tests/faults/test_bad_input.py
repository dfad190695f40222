"""Every option with a bad value, through the real entry point (`python -m perftop`): one line
on stderr, a non-zero exit status, no traceback. tests/unit/test_cli.py calls `main()` in-process
for the same contract; here the process itself is checked, and the values it does not try."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.faults.conftest import Spawn
from tests.faults.helpers import PYTHON, ROOT, assert_one_line_failure, perftop_env, run_perftop

USAGE = 2
FAILURE = 1
NO_SUCH_PID = "4194305"  # above the largest pid_max Linux allows
SYNTHETIC = Path(__file__).parents[1] / "data" / "synthetic.jsonl"


@pytest.mark.parametrize(
    ("args", "status", "fragment"),
    [
        # The list, end to end.
        (["-d", "0"], USAGE, "interval must be > 0"),
        (["-d", "-0.5"], USAGE, "interval must be > 0"),
        (["-F", "0"], USAGE, "frequency must be between 1 and"),
        (["-F", "1000000000"], USAGE, "frequency must be between 1 and"),
        (["-p", "abc"], USAGE, "'abc' is not a PID"),
        (["-p", NO_SUCH_PID], USAGE, f"no process with PID {NO_SUCH_PID}"),
        (["-e", "bogus"], USAGE, "unknown event 'bogus'"),
        (["--format", "xml"], USAGE, "invalid choice: 'xml'"),
        # Values tests/unit/test_cli.py does not try.
        (["-d", "nan"], USAGE, "interval must be > 0"),
        (["-d", "inf"], USAGE, "interval must be > 0"),
        (["-d", ""], USAGE, "is not a number of seconds"),
        (["-d", "3601"], USAGE, "interval must be > 0 and <= 3600 s"),
        (["-F", "-5"], USAGE, "frequency must be between 1 and"),
        (["-F", "100001"], USAGE, "frequency must be between 1 and 100000 Hz"),
        (["-F", "1.5"], USAGE, "'1.5' is not a whole number of Hz"),
        (["-p", "0"], USAGE, "'0' is not a PID"),
        (["-p", "1,,1"], USAGE, "'' is not a PID"),
        (["-p", "1.5"], USAGE, "'1.5' is not a PID"),
        (["-e", ""], USAGE, "unknown event ''"),
        (["-e", "CPU-CLOCK"], USAGE, "unknown event 'CPU-CLOCK'"),
        (["--format", ""], USAGE, "invalid choice: ''"),
        (["--top", "0"], USAGE, "at least 1"),
        (["-n", "-1"], USAGE, "at least 1"),
        (["-n", "many"], USAGE, "'many' is not a whole number"),
        (["-o", "/nonexistent-perftop-dir/out.txt"], USAGE, "no directory"),
        (["--record", "/"], USAGE, "it is a directory"),
        (["--replay", "/"], USAGE, "no recording at /"),
        (["-p", "²"], USAGE, "not a PID"),
        (["-p", "99999999999999999999"], USAGE, "not a PID"),
        (["-o", "/etc/hostname/out.txt"], USAGE, "cannot write"),
        # With a replay, so that a regression costs no compile: it would play the recording.
        (["-p", "", "--replay", str(SYNTHETIC), "-d", "0.01"], USAGE, "at least one PID"),
        (["-e", "cpu\nclock"], USAGE, "unknown event"),
    ],
)
def test_bad_value_is_one_line(args: list[str], status: int, fragment: str) -> None:
    result = run_perftop("--batch", "-n", "1", *args, timeout=60)
    assert_one_line_failure(result, status, fragment)


def test_invalid_utf8_argument_is_one_line() -> None:
    result = subprocess.run(
        [PYTHON.encode(), b"-m", b"perftop", b"--batch", b"-e", b"\xff\xfe"],
        capture_output=True,
        timeout=60,
        cwd=ROOT,
        env=perftop_env(),
    )
    decoded = subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )
    assert b"\xff" not in result.stderr  # shown as escapes, never as raw bytes
    line = assert_one_line_failure(decoded, USAGE, "unknown event")
    assert "\\udcff\\udcfe" in line


def test_too_many_pids(spawn: Spawn) -> None:
    sleepers = [spawn(["sleep", "60"], stdout=subprocess.DEVNULL) for _ in range(65)]
    pids = ",".join(str(process.pid) for process in sleepers)
    result = run_perftop("--batch", "-p", pids, timeout=60)
    assert_one_line_failure(result, USAGE, "at most 64 PIDs")


def test_record_over_an_existing_file(tmp_path: Path) -> None:
    existing = tmp_path / "session.jsonl"
    existing.write_text("keep\n")
    result = run_perftop("--batch", "--record", str(existing), timeout=60)
    assert_one_line_failure(result, USAGE, "already exists")
    assert existing.read_text() == "keep\n"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "holds no snapshots"),
        (b"\x00\xff garbage\n", "not UTF-8"),
        (b"{garbage\n", "not JSON"),
        (b'{"format": "something-else"}\n', ""),
    ],
)
def test_replay_of_a_file_that_is_not_a_recording(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    recording = tmp_path / "not-a-recording.jsonl"
    recording.write_bytes(content)
    result = run_perftop("--replay", str(recording), "--batch", timeout=60)
    assert_one_line_failure(result, FAILURE, str(recording), fragment)


def test_output_into_a_file_perftop_cannot_write() -> None:
    """A path that passes the up-front checks but fails when written: one line, status 1.
    (/proc/version exists and not even root may write it; --force lets it past the checks.)"""
    result = run_perftop(
        "--replay", str(SYNTHETIC), "--batch", "-d", "0.01", "-o", "/proc/version", "--force"
    )
    assert_one_line_failure(result, FAILURE)


def _run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """`perftop ARGS | head -0`: the reader is gone before the first write."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run(
            [PYTHON, "-m", "perftop", *args],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=perftop_env(),
        )
    finally:
        os.close(writer)
    return subprocess.CompletedProcess(result.args, result.returncode, "", result.stderr)


def test_doctor_into_a_closed_pipe_is_quiet() -> None:
    result = _run_into_closed_pipe("doctor")
    assert result.returncode == 1
    assert result.stderr == ""


def test_batch_into_a_closed_pipe_is_one_line() -> None:
    result = _run_into_closed_pipe("--replay", str(SYNTHETIC), "--batch", "-d", "0.01")
    assert_one_line_failure(result, FAILURE, "Broken pipe")
