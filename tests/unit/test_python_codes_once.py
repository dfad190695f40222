"""A Python code object is checked against its process once an interval: the prefetch between
drains and the drain share what they checked."""

from __future__ import annotations

import ctypes as ct
import os
from types import SimpleNamespace
from typing import Any

import pytest

from perftop.model.samples import Frame
from perftop.python.processes import PythonProcesses
from perftop.python.runtime import PythonRuntime
from perftop.sampling.bcc import python_frames
from perftop.sampling.bcc.abi import PythonStack
from perftop.sampling.bcc.python_frames import PythonFrames

CODE, OTHER_CODE, STACK_HASH = 0x7F00_0000_1000, 0x7F00_0000_2000, 0xABCD


class StoredStacks:
    """The kernel's side: python_stacks holds one stack of this process, two code objects."""

    def __init__(self, pid: int) -> None:
        self.stored = {STACK_HASH: (pid, (CODE, OTHER_CODE, CODE))}
        self.python_procs = SimpleNamespace(map_fd=1)
        self.python_stacks = SimpleNamespace(map_fd=2, keys=self.keys)

    def keys(self) -> list[ct.c_uint64]:
        return [ct.c_uint64(stack_hash) for stack_hash in self.stored]

    def bpf_lookup_elem(self, fd: int, key: Any, out: Any) -> int:
        found = self.stored.get(key._obj.value)
        if found is None:
            return -1
        buffer: PythonStack = out._obj
        buffer.tgid, codes = found
        buffer.depth, buffer.truncated = len(codes), 0
        for index, code in enumerate(codes):
            buffer.code[index], buffer.instruction[index] = code, 0
        return 0

    def bpf_delete_elem(self, fd: int, key: Any) -> int:
        return 0

    def bpf_update_elem(self, fd: int, key: Any, value: Any, flags: int) -> int:
        return 0


class CountedCodes(PythonProcesses):
    def __init__(self) -> None:
        super().__init__()
        self.checked: list[tuple[int, int]] = []

    def code(self, pid: int, code_address: int) -> None:
        self.checked.append((pid, code_address))
        return None


def test_a_code_object_prefetched_is_not_checked_again_by_the_drain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = os.getpid()
    processes = CountedCodes()
    if not isinstance(processes.detection(pid), PythonRuntime):
        pytest.skip("this interpreter's frames are not walkable by perftop")
    kernel = StoredStacks(pid)
    monkeypatch.setattr(python_frames, "lib", kernel)
    frames = PythonFrames(kernel, processes)  # type: ignore[arg-type]
    frames.observe([pid])
    assert frames.any_walked
    frames.prefetch()  # between drains: the stack read, its code objects checked
    assert sorted(processes.checked) == [(pid, CODE), (pid, OTHER_CODE)]
    frames.read({STACK_HASH})  # the drain
    named = frames.stack(pid, STACK_HASH, ())
    assert len(named) == 3
    assert sorted(processes.checked) == [(pid, CODE), (pid, OTHER_CODE)]
    frames.forget_exited()  # the next interval checks them again
    frames.stack(pid, STACK_HASH, ())
    assert len(processes.checked) == 4


def test_a_python_stack_recurring_in_one_interval_is_named_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given one Python stack sampled with three threads' native stacks in an interval,
    then its frames are named once (each entry merges them with its own native frames), and
    named afresh the next interval (its code objects checked again)."""
    pid = os.getpid()
    processes = CountedCodes()
    if not isinstance(processes.detection(pid), PythonRuntime):
        pytest.skip("this interpreter's frames are not walkable by perftop")
    kernel = StoredStacks(pid)
    monkeypatch.setattr(python_frames, "lib", kernel)
    frames = PythonFrames(kernel, processes)  # type: ignore[arg-type]
    frames.observe([pid])
    frames.read({STACK_HASH})
    named: list[tuple[int, int, int]] = []
    name = frames._frame

    def counted(pid: int, code: int, instruction: int) -> Frame:
        named.append((pid, code, instruction))
        return name(pid, code, instruction)

    monkeypatch.setattr(frames, "_frame", counted)
    leaf = Frame("memcpy", "libc.so.6", False)
    stacks = [frames.stack(pid, STACK_HASH, native) for native in ((), (leaf,), ())]
    assert len(named) == 3  # the stack's three frames, once
    assert stacks[0] == stacks[2] and stacks[1] == (*stacks[0], leaf)
    frames.forget_exited()
    frames.stack(pid, STACK_HASH, ())
    assert len(named) == 6
