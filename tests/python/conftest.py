"""Live CPython children for the perftop.python tests: each interpreter on this machine runs a
small script, and the tests read it from outside exactly as perftop will."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DEBIAN_PYTHON = Path("/usr/bin/python3.11")
PYENV_VERSIONS = ("3.11.7", "3.12.1", "3.13.0")
# A child that has not printed within this long is stuck; fail instead of hanging the suite.
CHILD_TIMEOUT_SECONDS = 10.0


def pyenv_root() -> Path:
    if "PYENV_ROOT" in os.environ:
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        completed = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if completed.returncode == 0:
            return Path(completed.stdout.strip())
    return Path.home() / ".pyenv"


def pyenv_python(version: str) -> Path:
    return pyenv_root() / "versions" / version / "bin" / "python3"


INTERPRETERS = ["debian-3.11", *(f"pyenv-{v}" for v in PYENV_VERSIONS)]


@pytest.fixture(params=INTERPRETERS)
def interpreter(request: pytest.FixtureRequest) -> Path:
    return interpreter_path(request.param)


def interpreter_path(name: str) -> Path:
    """Debian's python3.11 must exist (it is what perftop's users run); pyenv builds may not."""
    if name == "debian-3.11":
        assert DEBIAN_PYTHON.exists(), "Debian's /usr/bin/python3.11 is missing"
        return DEBIAN_PYTHON
    path = pyenv_python(name.removeprefix("pyenv-"))
    if not path.exists():
        # CI's machines have pyenv's builds: there a missing one is a failure, not a skip.
        if os.environ.get("PERFTOP_REQUIRE_BPF") == "1":
            pytest.fail(f"{path} not installed (PERFTOP_REQUIRE_BPF=1: CI must test it)")
        pytest.skip(f"{path} not installed")
    return path


@dataclass
class Child:
    process: subprocess.Popen[str]
    script: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def read_line(self) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], CHILD_TIMEOUT_SECONDS)
        assert ready, f"child {self.pid} printed nothing in {CHILD_TIMEOUT_SECONDS} s"
        line = self.process.stdout.readline()
        assert line, f"child {self.pid} exited: {self.process.wait()}"
        return line.rstrip("\n")

    def send_line(self, text: str = "") -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()


@contextmanager
def run_child(program: Path, source: str, directory: Path) -> Iterator[Child]:
    script = directory / "child_program.py"
    script.write_text(textwrap.dedent(source))
    process = subprocess.Popen(
        [str(program), str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield Child(process, script)
    finally:
        process.kill()
        process.wait()


def tracer_pid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    raise AssertionError(f"no TracerPid in /proc/{pid}/status")
