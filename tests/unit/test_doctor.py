from __future__ import annotations

import io

from perftop.cli import doctor
from perftop.cli.doctor import Check, run_doctor


def test_doctor_prints_each_check_with_remedy_and_fails_on_essentials(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(
        doctor,
        "CHECKS",
        (
            lambda: Check("privileges", "FAIL", "not root", "run with sudo"),
            lambda: [Check("event cycles", "n/a", "no PMU", "use -e cpu-clock")],
            lambda: Check("bcc", "ok", "imports", "never shown"),
        ),
    )
    out = io.StringIO()
    assert run_doctor(out) == 1
    assert out.getvalue().splitlines() == [
        "[FAIL] privileges: not root  -> run with sudo",
        "[n/a ] event cycles: no PMU  -> use -e cpu-clock",
        "[ ok ] bcc: imports",
        "perftop cannot sample here yet",
    ]


def test_doctor_names_every_check_here() -> None:
    out = io.StringIO()
    run_doctor(out)
    text = out.getvalue()
    for name in (
        "privileges",
        "bpf syscall",
        "bcc",
        "kernel headers",
        "perf_event_paranoid",
        "kptr_restrict",
        "event cpu-clock",
        "event cycles",
        "python processes",
    ):
        assert f"] {name}:" in text


def test_a_checks_listing_is_printed_indented_beneath_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    listing = ("  101  3.11.2  supported (frames walked)  python3.11 app.py",)
    monkeypatch.setattr(
        doctor, "CHECKS", (lambda: Check("python processes", "ok", "1 CPython", "", listing),)
    )
    out = io.StringIO()
    assert run_doctor(out) == 0
    assert out.getvalue().splitlines() == [
        "[ ok ] python processes: 1 CPython",
        "    101  3.11.2  supported (frames walked)  python3.11 app.py",
        "perftop can sample here",
    ]


def test_generic_headers_are_a_warning_that_says_what_it_means(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from perftop.system.headers import KernelHeaders

    generic = KernelHeaders(
        Path("/var/cache/perftop/headers/x"),
        "linux-headers-6.1.0-42-amd64 + linux-headers-6.1.0-42-common merged in /x "
        "(generic; running kernel is 6.18.0)",
        "6.18.0",
    )
    monkeypatch.setattr(doctor, "locate_headers", lambda: generic)
    check = doctor.check_headers()
    assert check.status == "warn"
    assert "another kernel's headers" in check.detail
    assert "BTF" in check.detail
    assert "linux-headers-6.18.0" in check.remedy
    exact = KernelHeaders(
        Path("/lib/modules/6.18.0/build"), "exact (headers of the running kernel)"
    )
    monkeypatch.setattr(doctor, "locate_headers", lambda: exact)
    assert doctor.check_headers().status == "ok"
