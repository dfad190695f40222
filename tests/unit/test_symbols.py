from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from perftop.model.reasons import Unresolved
from perftop.symbols.kernel import KernelSymbols
from perftop.symbols.user import BROKEN_UNWIND, Resolution, UserSymbols
from perftop.system.procfs import process_start_time

REASON_GONE = Unresolved.GONE
REASON_JIT = Unresolved.JIT
REASON_KPTR = Unresolved.KPTR
REASON_NOT_MAPPED = Unresolved.NOT_MAPPED
REASON_STRIPPED = Unresolved.STRIPPED


def write_kallsyms(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_kernel_symbol_by_bisection(tmp_path: Path) -> None:
    kallsyms = write_kallsyms(
        tmp_path / "kallsyms",
        [
            "ffffffff81000000 T _stext",
            "ffffffff81001000 t do_work",
            "ffffffff81002000 D some_data",
            "ffffffff81003000 T ext4_read [ext4]",
        ],
    )
    symbols = KernelSymbols(kallsyms)
    assert symbols.frame(0xFFFFFFFF81001234).symbol == "do_work"
    assert symbols.frame(0xFFFFFFFF81001234).module == "[kernel]"
    assert symbols.frame(0xFFFFFFFF81003010).module == "[ext4]"
    below = symbols.frame(0x1000)
    assert below.symbol == "[kernel]+0x1000" and not below.resolved


def test_kptr_restrict_says_so_instead_of_guessing(tmp_path: Path) -> None:
    kallsyms = write_kallsyms(
        tmp_path / "kallsyms", ["0000000000000000 T _stext", "0000000000000000 t do_work"]
    )
    frame = KernelSymbols(kallsyms).frame(0xFFFFFFFF81001234)
    assert frame.unresolved_reason == REASON_KPTR
    assert frame.symbol == "[kernel]+0xffffffff81001234"


class FakeResolver:
    opened: ClassVar[list[int]] = []
    closed: ClassVar[list[int]] = []

    def __init__(self, pid: int) -> None:
        self.pid = pid
        FakeResolver.opened.append(pid)

    def resolve(self, address: int) -> Resolution:
        if address == 0x1000:
            return Resolution("foo::bar()", 0, "/usr/bin/app", None)
        if address == 0x2000:
            return Resolution(None, 0x2A, "/usr/lib/libstripped.so", REASON_STRIPPED)
        if address == 0x3000:
            return Resolution("bad\ufffdname", 0, "/usr/bin/app", None)
        return Resolution(None, address, "[anon]", REASON_JIT)

    def close(self) -> None:
        FakeResolver.closed.append(self.pid)


def fresh(start_times: dict[int, int | None], **kwargs: int) -> UserSymbols:
    FakeResolver.opened, FakeResolver.closed = [], []
    return UserSymbols(FakeResolver, start_time=start_times.get, **kwargs)


def test_user_frames_name_module_and_unresolved_reasons() -> None:
    symbols = fresh({1: 100})
    assert symbols.frame(1, 0x1000).symbol == "foo::bar()"
    assert symbols.frame(1, 0x1000).module == "app"
    stripped = symbols.frame(1, 0x2000)
    assert (stripped.symbol, stripped.module) == ("libstripped.so+0x2a", "libstripped.so")
    assert stripped.unresolved_reason == REASON_STRIPPED
    jit = symbols.frame(1, 0x7F0000001234)
    assert jit.symbol == "[anon]+0x7f0000001234" and jit.unresolved_reason == REASON_JIT


def test_frame_of_a_process_already_gone() -> None:
    symbols = fresh({})
    assert symbols.frame(9, 0x4000).unresolved_reason == REASON_GONE


def test_resolver_cached_per_process_and_bounded() -> None:
    symbols = fresh({1: 1, 2: 2, 3: 3}, max_processes=2)
    symbols.frame(1, 0x1000)
    symbols.frame(1, 0x1000)
    symbols.frame(2, 0x1000)
    symbols.frame(3, 0x1000)  # evicts pid 1, the least recently used
    assert FakeResolver.opened == [1, 2, 3]
    assert FakeResolver.closed == [1]
    assert len(symbols) == 2


def test_exited_and_reused_pids_are_evicted() -> None:
    start_times: dict[int, int | None] = {1: 10, 2: 20}
    symbols = fresh(start_times)
    symbols.frame(1, 0x1000)
    symbols.frame(2, 0x1000)
    del start_times[1]  # exited
    start_times[2] = 99  # pid reused by a new process
    assert symbols.evict_exited() == 2
    assert sorted(FakeResolver.closed) == [1, 2]
    symbols.frame(2, 0x1000)
    assert FakeResolver.opened[-1] == 2


def test_frame_cache_is_bounded() -> None:
    symbols = fresh({1: 1, 2: 2}, max_frames_total=3, max_chains_total=2)
    for address in range(10):
        symbols.frame(1 + address % 2, 0x9000 + address)
        symbols.chain(1 + address % 2, (0x9000 + address, 0x1000))
        frames, chains = symbols.cached
        assert frames <= 3 and chains <= 2
    assert symbols.chain(1, (0x1000,)) == (symbols.frame(1, 0x1000),)


class UnmappedAt0x5000(FakeResolver):
    def resolve(self, address: int) -> Resolution:
        if address == 0x5000:
            return Resolution(None, address, "", REASON_NOT_MAPPED)
        return super().resolve(address)


def test_chains_built_from_their_callers_match_a_whole_walk() -> None:
    """A new stack whose callers' chain is known is built from it (the memo of callers);
    the frames must be those of walking every address, the broken-unwind cut included."""
    import random

    rng = random.Random(7)
    symbols = UserSymbols(UnmappedAt0x5000, start_time={1: 1}.get)
    addresses = [0x1000, 0x2000, 0x3000, 0x5000, 0x7000, 0x7008, 0x7010]
    callers = [tuple(rng.choice(addresses) for _ in range(rng.randint(0, 6))) for _ in range(30)]
    for _ in range(400):
        stack = (rng.choice(addresses), *rng.choice(callers))
        walked = []
        for address in stack:
            frame = symbols.frame(1, address)
            if frame.unresolved_reason == REASON_NOT_MAPPED:
                walked.append(BROKEN_UNWIND)
                break
            walked.append(frame)
        assert symbols.chain(1, stack) == tuple(reversed(walked)), stack
    assert symbols.chain(1, ()) == ()


def test_process_start_time_of_self_and_of_nothing() -> None:
    import os

    assert isinstance(process_start_time(os.getpid()), int)
    assert process_start_time(2**22 + 12345) is None
