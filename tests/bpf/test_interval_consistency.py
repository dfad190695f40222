"""One interval is one instant: its counts, per-CPU totals and lost counters are read from the
same generation of the program's maps, so the per-CPU samples sum to the interval's samples
exactly, under load and while the PID filter changes. (Read at different moments, as before,
one interval's CPUs summed to 7669 samples against its stacks' 2031 at 999 Hz on 2 CPUs.)"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from perftop.config import SamplerConfig
from perftop.model.samples import Interval

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

FREQUENCY = 999
INTERVAL_S = 0.3


@pytest.fixture
def two_busy_children(chain_binary: Path) -> Iterator[tuple[int, int]]:
    # Long enough for a slow compile on a loaded machine; killed at the end.
    children = [subprocess.Popen([str(chain_binary), "600"]) for _ in range(2)]
    try:
        yield children[0].pid, children[1].pid
    finally:
        for child in children:
            child.kill()
            child.wait()


def assert_consistent(snapshot: Interval) -> None:
    """The per-CPU samples are the interval's samples; no CPU sampled more often than its
    event fires; the idle samples are the CPUs' idle samples."""
    assert sum(cpu.samples for cpu in snapshot.cpus) == snapshot.samples, snapshot.cpus
    assert sum(stack.samples for stack in snapshot.stacks) == snapshot.samples
    assert sum(cpu.idle_samples for cpu in snapshot.cpus) == snapshot.idle_samples
    # A CPU's timer fires FREQUENCY times a second, busy or idle: counted and idle samples
    # together fit in the interval (10% and 3 samples of slack for timer jitter).
    for cpu in snapshot.cpus:
        limit = FREQUENCY * snapshot.interval_s * 1.1 + 3
        assert cpu.samples + cpu.idle_samples <= limit, (cpu, snapshot.interval_s)


def test_per_cpu_samples_sum_to_the_interval_under_load(two_busy_children: tuple[int, int]) -> None:
    from perftop.sampling.bcc.source import BccSource

    first, second = two_busy_children
    source = BccSource(SamplerConfig(interval_s=INTERVAL_S, frequency_hz=FREQUENCY))
    try:
        unfiltered = [source.next_interval() for _ in range(4)]
        source.set_pid_filter([first])  # applied at the next drain, between two intervals
        switching = source.next_interval()
        filtered = [source.next_interval() for _ in range(3)]
        source.set_pid_filter([])
        after = [source.next_interval() for _ in range(2)]
    finally:
        source.close()
    intervals = [*unfiltered, switching, *filtered, *after]
    assert all(snapshot is not None for snapshot in intervals)
    for snapshot in intervals:
        assert snapshot is not None
        assert_consistent(snapshot)
    # Under load, with nothing filtered, the two children's samples are there.
    for snapshot in unfiltered[1:]:
        assert snapshot is not None
        pids = {stack.pid for stack in snapshot.stacks}
        assert {first, second} <= pids, pids
        assert snapshot.samples > FREQUENCY * snapshot.interval_s * 0.5
    # Filtered: only the first child is counted, and the CPUs' samples are its samples.
    for snapshot in filtered:
        assert snapshot is not None
        assert {stack.pid for stack in snapshot.stacks} <= {first}
        assert snapshot.samples > 0
        assert snapshot.pid_filter == (first,)
