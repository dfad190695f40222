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

    def place(self, address: int) -> None:
        return None

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


class MappedFiles:
    """Each pid maps one file (an identity) at a base address of its own; resolves count."""

    resolved: ClassVar[list[tuple[int, int]]] = []
    files: ClassVar[dict[int, tuple[str, int]]] = {}  # pid -> (file identity, base)

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def place(self, address: int) -> tuple[str, int]:
        identity, base = MappedFiles.files[self.pid]
        return identity, address - base

    def resolve(self, address: int) -> Resolution:
        MappedFiles.resolved.append((self.pid, address))
        identity, base = MappedFiles.files[self.pid]
        return Resolution(f"{identity}_function_{address - base:x}", 0, f"/bin/{identity}", None)

    def close(self) -> None:
        pass


def test_a_binary_seen_in_two_processes_is_symbolized_once() -> None:
    """Given two processes mapping one file at two bases (ASLR), when both sample one place
    of it, then the second is named from the first's frame, not resolved again."""
    MappedFiles.resolved = []
    MappedFiles.files = {1: ("app", 0x10000), 2: ("app", 0x50000)}
    symbols = UserSymbols(MappedFiles, start_time={1: 1, 2: 2, 3: 3}.get)
    first = symbols.chain(1, (0x10040, 0x10020))
    second = symbols.chain(2, (0x50040, 0x50020))
    assert first == second
    assert [frame.symbol for frame in first] == ["app_function_20", "app_function_40"]
    assert MappedFiles.resolved == [(1, 0x10040), (1, 0x10020)]
    symbols.evict_exited()  # the next interval, a third process (a fork): known by place
    MappedFiles.files[3] = ("app", 0x90000)
    assert symbols.chain(3, (0x90040,)) == (first[1],)
    assert len(MappedFiles.resolved) == 2


def test_a_reused_pid_or_another_file_at_one_address_is_named_afresh() -> None:
    """Given pid 1 running `app`, when the pid passes to a process of `tool` (or a process
    maps another file where the first had `app`), then its addresses name `tool`'s code."""
    MappedFiles.resolved = []
    MappedFiles.files = {1: ("app", 0x10000), 2: ("tool", 0x10000)}
    start_times: dict[int, int | None] = {1: 10, 2: 20}
    symbols = UserSymbols(MappedFiles, start_time=start_times.get)
    assert symbols.frame(1, 0x10040).symbol == "app_function_40"
    assert symbols.frame(2, 0x10040).symbol == "tool_function_40"
    start_times[1] = 11  # pid 1 reused, by a process of `tool`
    MappedFiles.files[1] = ("tool", 0x10000)
    symbols.evict_exited()
    assert symbols.frame(1, 0x10040).symbol == "tool_function_40"
    assert symbols.frame(1, 0x10080).symbol == "tool_function_80"


def test_a_process_gone_before_it_was_seen_does_not_name_the_file_for_others() -> None:
    MappedFiles.resolved = []
    MappedFiles.files = {1: ("app", 0x10000), 2: ("app", 0x10000)}
    symbols = UserSymbols(MappedFiles, start_time={2: 2}.get)  # pid 1 has no start time
    symbols.frame(1, 0x10040)
    symbols.frame(2, 0x10040)
    assert MappedFiles.resolved == [(1, 0x10040), (2, 0x10040)]
