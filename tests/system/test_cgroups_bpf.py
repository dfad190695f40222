"""The assumption the cgroup resolver rests on, checked against the kernel helper itself: the id
`bpf_get_current_cgroup_id()` returns in a perf-event program is the cgroup directory's inode.

A kernel test (BCC compiles a small program: seconds on an idle machine, half a minute on a
loaded one), so it sits with the other `bpf`-marked tests apart from the quick live ones.
"""

from __future__ import annotations

import time

import pytest

from perftop.system.cgroups import CgroupResolver
from tests.system.conftest import CgroupSandbox

pytestmark = [pytest.mark.bpf, pytest.mark.usefixtures("require_bpf")]

# Sampled the way perftop samples: a CPU-clock perf event, the cgroup id read in the handler.
CGROUP_ID_PROGRAM = r"""
#include <uapi/linux/bpf_perf_event.h>

BPF_HASH(cgroup_by_tgid, u32, u64);

int on_sample(struct bpf_perf_event_data *ctx) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (tgid != TARGET_TGID)
        return 0;
    u64 cgroup_id = bpf_get_current_cgroup_id();
    cgroup_by_tgid.update(&tgid, &cgroup_id);
    return 0;
}
"""


def test_bpf_cgroup_id_is_the_directory_inode(
    sandbox: CgroupSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The assumption the whole resolver rests on, checked against the kernel helper itself."""
    from bcc import BPF, PerfSWConfig, PerfType

    from perftop.system.headers import locate_headers

    # BCC compiles against kernel headers; use the tree perftop itself would (merged if split).
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(locate_headers().path))
    directory = sandbox.make("seen-by-bpf")
    [child] = sandbox.spawn_busy(directory)
    program = BPF(text=CGROUP_ID_PROGRAM.encode(), cflags=[f"-DTARGET_TGID={child.pid}"])
    try:
        program.attach_perf_event(
            ev_type=PerfType.SOFTWARE,
            ev_config=PerfSWConfig.CPU_CLOCK,
            fn_name=b"on_sample",
            sample_freq=199,
        )
        seen = program[b"cgroup_by_tgid"]
        deadline = time.monotonic() + 10  # the busy child gets a few percent of a loaded CPU
        while not len(seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        ids = [value.value for value in seen.values()]
    finally:
        program.cleanup()
    assert ids == [directory.stat().st_ino]
    assert CgroupResolver(sandbox.mount).path_of(ids[0]) == sandbox.path("seen-by-bpf")
