"""Annotate a Python function with the real sampler: Debian's python3.11 runs a function with
one slow line, and that line is the hottest of its annotation, read from the file on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from perftop.annotate.code import read_function_code
from perftop.config import SamplerConfig
from perftop.model.annotate import CodeKind
from perftop.profile.leaf_offsets import function_histogram
from perftop.viewmodel.annotate import annotate
from tests.python.conftest import DEBIAN_PYTHON, run_child

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

# Line numbers as the file has them (run_child dedents): the slow line is 6.
SLOW_LINE = 6
ONE_SLOW_LINE = """
    import sys
    def work(n):
        a = 0
        for i in range(n):
            a = (a + i * i * 3 + i // 7 - i % 5 + (i << 3) - (i >> 2) * 11 + i * 13) & 0xFFFFF
        b = a + 1
        return b

    print("ready", flush=True)
    while True:
        work(200000)
"""


@pytest.fixture(scope="module")
def source() -> Iterator[object]:
    from perftop.sampling.bcc.source import BccSource

    sampler = BccSource(SamplerConfig(interval_s=1.0, frequency_hz=499, pids=(os.getpid(),)))
    yield sampler
    sampler.close()


def test_the_slow_line_is_the_hottest(source: object, tmp_path: Path) -> None:
    with run_child(DEBIAN_PYTHON, ONE_SLOW_LINE, tmp_path) as child:
        assert child.read_line() == "ready"
        source.set_pid_filter([child.pid])  # type: ignore[attr-defined]
        source.next_interval()  # type: ignore[attr-defined]
        interval = source.next_interval()  # type: ignore[attr-defined]
        keys = [key for pid, key in interval.leaf_offsets if pid == child.pid]
        work = next((key for key in keys if key[0].startswith("work (")), None)
        assert work is not None, keys
        histogram = function_histogram(interval.leaf_offsets, work, (child.pid,))
        assert histogram is not None and histogram.site.kind is CodeKind.PYTHON
        code = read_function_code(histogram.site, frozenset(histogram.counts))
    assert code.reason == ""
    annotation = annotate(work, histogram, code)
    # The function's own lines, from its def to its return, each with its share.
    assert [line.offset for line in annotation.lines] == list(range(3, 9))
    assert "i * i * 3" in annotation.lines[SLOW_LINE - 3].text
    hottest = [line.offset for line in annotation.lines if line.hottest]
    assert hottest == [SLOW_LINE], [(line.offset, line.percent) for line in annotation.lines]
    assert annotation.lines[SLOW_LINE - 3].percent > 50
    assert sum(line.percent for line in annotation.lines) == pytest.approx(
        100.0 * sum(histogram.counts.values()) / histogram.total
    )
