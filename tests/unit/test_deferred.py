"""The screen starts before the BPF program: DeferredSource."""

from __future__ import annotations

import threading

import pytest

from perftop.config import SamplerConfig
from perftop.formats.recording import read_recording
from perftop.profile.view import build_view
from perftop.sampling.deferred import LOADING_NOTICE, DeferredSource
from perftop.sampling.source import SourceError
from tests.ui.conftest import SYNTHETIC_RECORDING, FakeSource


def test_processes_from_psutil_until_the_program_is_ready_then_the_real_source() -> None:
    recorded = read_recording(SYNTHETIC_RECORDING)
    release = threading.Event()
    real = FakeSource(recorded[:1])

    def build() -> FakeSource:
        release.wait(5)
        return real

    source = DeferredSource(build, SamplerConfig(interval_s=0.05, python_frames=False))
    source.set_pid_filter([1])  # before the program exists: applied once it does
    source.set_python_frames(True)
    early = source.next_interval()
    assert early is not None and early.samples == 0 and early.stacks == ()
    assert early.notices == (LOADING_NOTICE,)
    # The screen starts from what the command line asked for (--no-python).
    assert early.python_frames is False
    assert all(process.info.cpu_percent >= 0 for process in build_view(early).processes)
    release.set()
    assert source._ready.wait(5)  # the builder has handed the real source over
    assert source.next_interval() == recorded[0]
    assert real.calls == [("pid_filter", (1,)), ("python_frames", True)]
    source.set_python_frames(False)  # once live: straight through
    assert real.calls[-1] == ("python_frames", False)
    source.close()


def test_a_failed_compile_is_the_sources_error() -> None:
    def build() -> FakeSource:
        raise SourceError("event 'cycles' cannot be sampled here")

    source = DeferredSource(build, SamplerConfig(interval_s=5))
    with pytest.raises(SourceError, match="cycles"):
        source.next_interval()
    source.close()


def test_interrupt_wakes_a_waiting_screen() -> None:
    source = DeferredSource(
        lambda: threading.Event().wait(2) or FakeSource(), SamplerConfig(interval_s=30)
    )
    timer = threading.Timer(0.1, source.interrupt)
    timer.start()
    assert source.next_interval() is None
    source.close()
