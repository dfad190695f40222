"""PLT stubs in a real profile: a program that spends its time calling through the PLT shows
`helper@plt` rows, never `_init` (the zero-size symbol before .plt used to absorb them)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perftop.config import SamplerConfig
from perftop.profile.view import build_view
from tests.unit.test_plt_symbols import LAYOUTS, build_plt_program

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]


@pytest.fixture
def busy_plt(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    binary = build_plt_program(tmp_path, LAYOUTS["ibt"], name="perftop_plt")
    process = subprocess.Popen([str(binary), "spin"])
    time.sleep(0.1)
    yield process
    process.kill()
    process.wait()


def test_calls_through_the_plt_are_named_by_their_stub(busy_plt: subprocess.Popen[bytes]) -> None:
    from perftop.sampling.bcc.source import BccSource

    sampler = BccSource(SamplerConfig(interval_s=1.0, frequency_hz=499))
    try:
        self_by_symbol: dict[str, int] = {}
        for _ in range(3):
            interval = sampler.next_interval()
            assert interval is not None
            view = build_view(interval)
            for stack in view.stacks:
                if stack.pid == busy_plt.pid and stack.frames:
                    leaf = stack.frames[-1].symbol or "?"
                    self_by_symbol[leaf] = self_by_symbol.get(leaf, 0) + stack.samples
    finally:
        sampler.close()
    assert sum(self_by_symbol.values()) > 200, self_by_symbol
    stubs = {name for name in self_by_symbol if name.endswith("@plt")}
    assert stubs & {"helper_a@plt", "helper_b@plt", "helper_c@plt", "strlen@plt"}, self_by_symbol
    assert "_init" not in self_by_symbol, self_by_symbol
