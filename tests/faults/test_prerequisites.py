"""Missing prerequisites, each made real for one perftop process: a user without privileges, a
seccomp filter refusing bpf() or perf_event_open(), kernel headers hidden by a private mount, BCC
shadowed on PYTHONPATH, kernel addresses hidden from a root without CAP_SYSLOG, no PMU. Each
ends in one clear line, a non-zero exit status and no traceback (on the batch path, and on the
screen's path where that differs), and `perftop doctor` names it."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perftop.formats.recording import read_recording
from perftop.model.reasons import Unresolved
from perftop.model.samples import KERNEL_MODULE
from tests.faults.conftest import Spawn, boost
from tests.faults.helpers import (
    assert_one_line_failure,
    doctor_lines,
    finish,
    perftop_argv,
    perftop_env,
    run_perftop,
    setpriv,
    start_perftop,
    wait_until_attached,
)
from tests.faults.terminal import PtyProcess, unrestored_modes

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

HERE = Path(__file__).parent
SECCOMP = [sys.executable, str(HERE / "seccomp_exec.py")]
FAILURE = 1
NOT_PRIVILEGED = "neither root nor CAP_BPF + CAP_PERFMON: run with sudo"


def refusing(*syscalls: str) -> list[str]:
    return [*SECCOMP, ",".join(syscalls), "--"]


def run_on_screen(*args: str, env: dict[str, str] | None = None) -> tuple[int, PtyProcess]:
    """perftop's screen (no --batch) in a pty, until it exits."""
    screen = PtyProcess(perftop_argv(*args), env=env or perftop_env())
    try:
        status = screen.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        screen.close()
        raise
    time.sleep(0.2)  # the reader thread drains what was written just before the exit
    return status, screen


def after_screen(screen: PtyProcess) -> str:
    """What the screen left on the terminal after leaving the alternate screen."""
    output = screen.output()
    left = output.rsplit(b"\x1b[?1049l", 1)[-1]
    text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", left).decode("utf-8", "replace")
    return text.replace("\r", "")


# Privileges -----------------------------------------------------------------------------------


def test_not_root_and_no_capabilities() -> None:
    result = run_perftop("--batch", "-n", "1", prefix=setpriv())
    assert_one_line_failure(result, FAILURE, NOT_PRIVILEGED)
    # The screen's path checks before it takes the terminal.
    result = run_perftop(prefix=setpriv())
    assert_one_line_failure(result, FAILURE, NOT_PRIVILEGED)


def test_doctor_of_an_unprivileged_user() -> None:
    result = run_perftop("doctor", prefix=setpriv())
    checks = doctor_lines(result)
    assert result.returncode == 1
    assert checks["privileges"].startswith("[FAIL]") and NOT_PRIVILEGED in checks["privileges"]
    assert checks["bpf syscall"].startswith("[FAIL]")
    assert "run as root" in checks["bpf syscall"]
    assert result.stdout.splitlines()[-1] == "perftop cannot sample here yet"


# The kernel refuses ---------------------------------------------------------------------------


@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="seccomp helper")
def test_bpf_syscall_refused() -> None:
    """Root, but a seccomp filter (a container runtime's default profile) refuses bpf()."""
    result = run_perftop("--batch", "-n", "1", prefix=refusing("bpf"))
    assert_one_line_failure(
        result, FAILURE, "could not load the BPF program", "Operation not permitted"
    )
    checks = doctor_lines(run_perftop("doctor", prefix=refusing("bpf")))
    assert checks["bpf syscall"].startswith("[FAIL] bpf syscall: Operation not permitted")
    assert "seccomp" in checks["bpf syscall"]  # root already: the remedy is not "run as root"


@pytest.fixture(scope="module")
def perf_event_open_refused() -> subprocess.CompletedProcess[str]:
    if platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip("the seccomp helper knows x86_64 and aarch64 only")
    return run_perftop("--batch", "-n", "1", prefix=refusing("perf_event_open"))


def test_perf_event_open_refused(
    perf_event_open_refused: subprocess.CompletedProcess[str],
) -> None:
    result = perf_event_open_refused
    assert_one_line_failure(result, FAILURE, "event 'cpu-clock' cannot be sampled here")
    assert "permission denied" in result.stderr
    doctor = run_perftop("doctor", prefix=refusing("perf_event_open"))
    checks = doctor_lines(doctor)
    assert checks["event cpu-clock"].startswith("[FAIL]")
    assert doctor.returncode == 1
    assert doctor.stdout.splitlines()[-1] == "perftop cannot sample here yet"


def test_refused_cpu_clock_does_not_suggest_itself(
    perf_event_open_refused: subprocess.CompletedProcess[str],
) -> None:
    assert "use -e cpu-clock" not in perf_event_open_refused.stderr


# Kernel headers -------------------------------------------------------------------------------


def test_no_kernel_headers() -> None:
    """No /lib/modules/$(uname -r)/build, no /usr/src/linux-headers-*, no merged cache: each
    hidden under an empty tmpfs in a private mount namespace of the perftop process only."""
    hide = " && ".join(
        f"mount -t tmpfs none {path}"
        for path in ("/usr/src", "/lib/modules", "/var/cache")
        if os.path.isdir(path)
    )
    command = " ".join(perftop_argv("--batch", "-n", "1"))
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
    result = subprocess.run(
        [*prefix, f"{hide} && exec {command}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=perftop_env(),
    )
    assert_one_line_failure(
        result, FAILURE, f"no kernel headers for {platform.release()}", "install linux-headers-"
    )
    doctor = subprocess.run(
        [*prefix, f"{hide} && exec {' '.join(perftop_argv('doctor'))}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=perftop_env(),
    )
    checks = doctor_lines(doctor)
    assert checks["kernel headers"].startswith("[FAIL] kernel headers: no kernel headers for")
    assert doctor.returncode == 1


def test_kernel_headers_that_do_not_compile(tmp_path: Path) -> None:
    """BCC_KERNEL_SOURCE names a tree without the headers: clang's errors become one line."""
    result = run_perftop("--batch", "-n", "1", env=perftop_env(BCC_KERNEL_SOURCE=str(tmp_path)))
    assert_one_line_failure(result, FAILURE, "could not load the BPF program")


# BCC ------------------------------------------------------------------------------------------


@pytest.fixture
def without_bcc(tmp_path: Path) -> dict[str, str]:
    """An environment where `import bcc` fails as on a machine without python3-bpfcc."""
    shadow = tmp_path / "shadow" / "bcc"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'bcc'\")\n")
    return perftop_env(PYTHONPATH=str(shadow.parent))


@pytest.fixture
def without_libbcc(tmp_path: Path) -> dict[str, str]:
    """python3-bpfcc present but libbcc.so.0 missing: bcc's own import raises OSError (ctypes)."""
    shadow = tmp_path / "shadow" / "bcc"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "import ctypes\nctypes.CDLL('libbcc-perftop-test-missing.so.0')\n"
    )
    return perftop_env(PYTHONPATH=str(shadow.parent))


def test_bcc_missing(without_bcc: dict[str, str]) -> None:
    result = run_perftop("--batch", "-n", "1", env=without_bcc)
    assert_one_line_failure(result, FAILURE, "BCC is not installed", "install python3-bpfcc")
    doctor = run_perftop("doctor", env=without_bcc)
    checks = doctor_lines(doctor)
    assert checks["bcc"].startswith("[FAIL] bcc: BCC is not installed")
    assert checks["events"].startswith("[n/a ] events: BCC missing")
    assert doctor.returncode == 1


def test_bcc_missing_on_the_screen(without_bcc: dict[str, str]) -> None:
    status, screen = run_on_screen(env=without_bcc)
    try:
        assert status == FAILURE
        assert unrestored_modes(screen.output()) == {}
        assert screen.termios_now() == screen.termios_before
        left = after_screen(screen)
        assert "Traceback" not in screen.text()
        assert left.strip().splitlines() == [
            "perftop: BCC is not installed (No module named 'bcc'): install python3-bpfcc "
            "(`make setup`)"
        ]
    finally:
        screen.close()


def test_libbcc_missing(without_libbcc: dict[str, str]) -> None:
    result = run_perftop("--batch", "-n", "1", env=without_libbcc)
    assert_one_line_failure(result, FAILURE, "libbcc-perftop-test-missing.so.0")
    doctor = run_perftop("doctor", env=without_libbcc)
    checks = doctor_lines(doctor)  # and no traceback: doctor.py catches the OSError
    assert checks["bcc"].startswith("[FAIL] bcc: BCC cannot be loaded")
    assert doctor.returncode == 1


# kptr_restrict --------------------------------------------------------------------------------


def without_syslog() -> list[str]:
    """Root without CAP_SYSLOG: /proc/kallsyms then shows zeros (kptr_restrict 1, or 0 with
    perf_event_paranoid > 1), as it does for everyone at kptr_restrict 2, without touching
    the sysctl other tests on this machine depend on."""
    return ["capsh", "--drop=cap_syslog", "--", "-c", 'exec "$0" "$@"']


@pytest.fixture(scope="module")
def hidden_kernel_run(
    module_spawn: Spawn, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """perftop without CAP_SYSLOG, sampling a process that spends its time in the kernel:
    (its text output, its recording)."""
    probe = subprocess.run(
        [*without_syslog(), "head", "-1", "/proc/kallsyms"], capture_output=True, text=True
    )
    if not probe.stdout.startswith("0000000000000000"):
        pytest.skip("kallsyms shows addresses without CAP_SYSLOG here (perf_event_paranoid <= 1)")
    dd = module_spawn(["dd", "if=/dev/zero", "of=/dev/null", "bs=1M"], stdout=subprocess.DEVNULL)
    recording = tmp_path_factory.mktemp("kptr") / "hidden.jsonl"
    args = ["--batch", "-n", "2", "-d", "0.5", "-p", str(dd.pid), "--record", str(recording)]
    perftop = start_perftop(*args, prefix=without_syslog())
    wait_until_attached(perftop.pid)
    boost(dd.pid)
    result = finish(perftop)
    dd.kill()
    return result, recording


def test_kptr_restrict_kernel_frames_say_so(
    hidden_kernel_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, recording = hidden_kernel_run
    assert result.returncode == 0, result.stderr
    snapshots = read_recording(recording)
    kernel_frames = {
        frame for s in snapshots for stack in s.stacks for frame in stack.frames if frame.kernel
    }
    assert kernel_frames, "dd produced no kernel frames"
    for frame in kernel_frames:
        # The true address, never the nearest (wrong) name from an all-zero kallsyms.
        assert re.fullmatch(r"\[kernel\]\+0x[0-9a-f]{8,}", frame.symbol), frame
        assert frame.module == KERNEL_MODULE
        assert frame.unresolved_reason is Unresolved.KPTR
    text_frames = [line for line in result.stdout.splitlines() if " [k] " in line]
    assert text_frames and all("[kernel]+0x" in line for line in text_frames)
    doctor = run_perftop("doctor", prefix=without_syslog())
    kptr = doctor_lines(doctor)["kptr_restrict"]
    assert kptr.startswith("[warn]") and "kernel addresses are hidden" in kptr
    assert "CAP_SYSLOG" in kptr


def test_kptr_restrict_batch_text_says_so(
    hidden_kernel_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, _ = hidden_kernel_run
    assert "kptr_restrict" in result.stdout


# No PMU ---------------------------------------------------------------------------------------


def _has_pmu() -> bool:
    from perftop.model.events import EVENTS
    from perftop.sampling.bcc.source import probe_event

    return probe_event(EVENTS["cycles"]) is None


NO_PMU_LINE = (
    "perftop: event 'cycles' cannot be sampled here: not supported by this machine "
    "(no hardware PMU); use -e cpu-clock instead"
)


@pytest.fixture(scope="module")
def no_pmu_screen() -> Iterator[tuple[int, PtyProcess]]:
    if _has_pmu():
        pytest.skip("this machine has a PMU")
    status, screen = run_on_screen("-e", "cycles")
    yield status, screen
    screen.close()


def test_hardware_event_without_a_pmu_on_the_screen(no_pmu_screen: tuple[int, PtyProcess]) -> None:
    """The batch path is tests/bpf/test_sampler.py::test_cli_hardware_event_is_one_clear_line;
    here the screen starts, compiles beside it, fails to attach, restores the terminal and
    says why."""
    status, screen = no_pmu_screen
    assert status == FAILURE
    assert unrestored_modes(screen.output()) == {}
    assert screen.termios_now() == screen.termios_before
    assert "Traceback" not in screen.text()
    assert " ".join(after_screen(screen).split()) == NO_PMU_LINE


def test_hardware_event_without_a_pmu_on_the_screen_is_one_line(
    no_pmu_screen: tuple[int, PtyProcess],
) -> None:
    _, screen = no_pmu_screen
    assert after_screen(screen).strip().splitlines() == [NO_PMU_LINE]
