"""`perftop doctor` lists the running CPython processes: real interpreters, real `sleep`, real
fakes (hostile_runtime.c), real exits in the middle of the scan."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from perftop.cli import python_scan
from perftop.cli.doctor import check_python_processes, python_check
from perftop.cli.python_scan import SUPPORTED, PythonProcess, scan_python_processes
from perftop.python import Detection, PythonRuntime, detect_python
from tests.faults.helpers import doctor_lines, run_perftop, setpriv
from tests.python.conftest import CHILD_TIMEOUT_SECONDS, DEBIAN_PYTHON, pyenv_root, run_child
from tests.python.test_python_hostile import VARIANTS, hostile_process

WAITING_PROGRAM = """
    import sys
    print("ready", flush=True)
    sys.stdin.readline()
"""
HOSTILE_ARGUMENTS = ("\x1b[31m", "[red]x[/red]", "\n[FAIL] spoofed: a check line")


def listed(pid: int) -> PythonProcess | None:
    return next((p for p in scan_python_processes().processes if p.pid == pid), None)


def listing_line(pid: int) -> str:
    lines = [line for line in check_python_processes().listing if line.split()[0] == str(pid)]
    assert len(lines) == 1, check_python_processes().listing
    return lines[0]


def old_pyenv_python() -> Path:
    """A pyenv CPython perftop detects but cannot walk: 3.10, else 3.9."""
    for series in ("3.10", "3.9"):
        found = sorted((pyenv_root() / "versions").glob(f"{series}.*/bin/python3"))
        if found:
            return found[-1]
    if os.environ.get("PERFTOP_REQUIRE_BPF") == "1":
        pytest.fail("no pyenv 3.10 or 3.9 (PERFTOP_REQUIRE_BPF=1: CI must test it)")
    pytest.skip("no pyenv 3.10 or 3.9 installed")


@contextmanager
def waiting_python(
    program: Path, directory: Path, arguments: tuple[str, ...] = ()
) -> Iterator[subprocess.Popen[str]]:
    """`program` running WAITING_PROGRAM with `arguments` in its argv, killed on the way out."""
    script = directory / "waiting.py"
    script.write_text(textwrap.dedent(WAITING_PROGRAM))
    process = subprocess.Popen(
        [str(program), str(script), *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"  # its libpython is mapped by now
        yield process
    finally:
        process.kill()
        process.wait(CHILD_TIMEOUT_SECONDS)


@contextmanager
def sleeping() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process
    finally:
        process.kill()
        process.wait(CHILD_TIMEOUT_SECONDS)


def test_debian_python_is_listed_as_supported(tmp_path: Path) -> None:
    with run_child(DEBIAN_PYTHON, WAITING_PROGRAM, tmp_path) as child:
        assert child.read_line() == "ready"
        process = listed(child.pid)
        line = listing_line(child.pid)
    assert process is not None
    assert process.supported and process.version.startswith("3.11.")
    assert process.command == f"{DEBIAN_PYTHON} {child.script}"
    assert line.split()[1].startswith("3.11.")
    assert SUPPORTED in line and line.endswith(process.command)


def test_pyenv_3_10_is_listed_as_not_supported_with_its_reason(tmp_path: Path) -> None:
    program = old_pyenv_python()
    series = program.parent.parent.name.rsplit(".", 1)[0]  # "3.10.13" -> "3.10"
    with run_child(program, WAITING_PROGRAM, tmp_path) as child:
        assert child.read_line() == "ready"
        process = listed(child.pid)
        line = listing_line(child.pid)
    assert process is not None
    assert not process.supported and process.version == series
    assert process.reason == f"CPython {series}: interpreter frames not supported"
    assert f" {series} " in line
    assert f"not supported: CPython {series}: interpreter frames not supported" in line


def test_a_process_without_python_is_not_listed() -> None:
    with sleeping() as sleeper:
        scan = scan_python_processes([sleeper.pid])
        everything = scan_python_processes()
    assert scan.processes == () and scan.examined == 1 and scan.refused == 0
    assert sleeper.pid not in [process.pid for process in everything.processes]
    check = python_check(scan)
    assert (check.status, check.detail, check.listing) == (
        "ok",
        "no CPython process among 1 process examined",
        (),
    )


def test_untrusted_argv_is_shown_literally_on_one_line(tmp_path: Path) -> None:
    with waiting_python(DEBIAN_PYTHON, tmp_path, HOSTILE_ARGUMENTS) as child:
        line = listing_line(child.pid)
        doctor = run_perftop("doctor")
    expected = r"\x1b[31m [red]x[/red] \x0a[FAIL] spoofed: a check line"
    assert line.endswith(expected)
    printed = [entry for entry in doctor.stdout.splitlines() if entry.endswith(expected)]
    assert printed == [f"  {line}"]
    assert "\x1b" not in doctor.stdout
    assert "spoofed" not in doctor_lines(doctor)  # no line of its own, so no fake check
    assert doctor.stdout.splitlines()[-1] in (
        "perftop can sample here",
        "perftop cannot sample here yet",
    )


@pytest.fixture(scope="session")
def hostile_builds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-doctor")


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_fake_runtime_is_listed_without_raising(variant: str, hostile_builds: Path) -> None:
    flags, expected = VARIANTS[variant]
    with hostile_process(hostile_builds, flags) as fake:
        process = listed(fake.pid)
        check = check_python_processes()
    assert process is not None
    assert process.supported == (expected is PythonRuntime)
    assert process.supported or process.reason
    assert any(line.split()[0] == str(fake.pid) for line in check.listing)


def test_a_process_exiting_after_its_detection_is_left_out(tmp_path: Path) -> None:
    with run_child(DEBIAN_PYTHON, WAITING_PROGRAM, tmp_path) as child:
        assert child.read_line() == "ready"

        def detect_then_exit(pid: int) -> Detection:
            detection = detect_python(pid)
            child.process.kill()
            child.process.wait()
            return detection

        scan = scan_python_processes([child.pid], detect=detect_then_exit)
    assert scan.processes == () and scan.examined == 1


def test_a_process_gone_before_its_detection_is_neither_listed_nor_refused(
    tmp_path: Path,
) -> None:
    with run_child(DEBIAN_PYTHON, WAITING_PROGRAM, tmp_path) as child:
        assert child.read_line() == "ready"
        child.process.kill()
        child.process.wait()
        scan = scan_python_processes([child.pid])
    assert (scan.processes, scan.examined, scan.refused) == ((), 1, 0)


def test_a_detection_that_raises_is_shown_not_raised(tmp_path: Path) -> None:
    # Nothing real makes detect_python raise (test_python_hostile checks that); this stands in
    # for a future bug, which must not cost the user the rest of the report.
    def broken(pid: int) -> Detection:
        raise ValueError("\x1b[2Jbad")

    with run_child(DEBIAN_PYTHON, WAITING_PROGRAM, tmp_path) as child:
        assert child.read_line() == "ready"
        scan = scan_python_processes([child.pid], detect=broken)
    assert [(p.pid, p.supported, p.version) for p in scan.processes] == [(child.pid, False, "?")]
    assert scan.processes[0].reason.startswith(r"detection failed (ValueError: \x1b[2Jbad)")


def test_the_cap_on_examined_processes_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    with sleeping(), sleeping():  # at least two pids besides perftop's own
        monkeypatch.setattr(python_scan, "MAX_EXAMINED", 2)
        check = check_python_processes()
    assert check.status == "warn"
    assert " among 2 processes examined; only the 2 lowest pids of " in check.detail


def test_other_users_processes_are_counted_with_the_privilege_that_opens_them(
    tmp_path: Path,
) -> None:
    with run_child(DEBIAN_PYTHON, WAITING_PROGRAM, tmp_path) as child:
        assert child.read_line() == "ready"
        doctor = run_perftop("doctor", prefix=setpriv())
    line = doctor_lines(doctor)["python processes"]
    assert line.startswith("[warn] python processes: ")
    assert " closed to this user  -> run as root (or grant CAP_SYS_PTRACE)" in line
    # The child runs as root: nobody may not read it, so it is counted, not listed.
    assert not [
        entry for entry in doctor.stdout.splitlines() if entry.split()[:1] == [str(child.pid)]
    ]
