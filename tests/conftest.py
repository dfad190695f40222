"""Shared fixtures. Kernel tests skip only where BPF cannot run; PERFTOP_REQUIRE_BPF=1 (CI)
turns that skip into a failure, so CI can never pass without really loading the program."""

from __future__ import annotations

import os

import pytest


def bpf_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "kernel tests need root"
    from perftop.sampling.bcc.source import bcc_available

    return bcc_available()


@pytest.fixture(scope="session")
def require_bpf() -> None:
    reason = bpf_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("PERFTOP_REQUIRE_BPF") == "1":
        pytest.fail(f"PERFTOP_REQUIRE_BPF=1 but BPF cannot run: {reason}")
    pytest.skip(reason)
