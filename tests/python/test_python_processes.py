"""PythonProcesses names the (code, instruction) pairs the BPF walker will hand over."""

from __future__ import annotations

from pathlib import Path

from perftop.python import ProcessMemory, PythonProcesses, PythonRuntime, find_thread, raw_frames
from perftop.python.threads import current_frame
from tests.python.conftest import run_child, tracer_pid
from tests.python.test_python_walk import CHAIN_PROGRAM


def test_raw_pairs_are_named_like_the_walk_names_them(interpreter: Path, tmp_path: Path) -> None:
    processes = PythonProcesses()
    try:
        with run_child(interpreter, CHAIN_PROGRAM, tmp_path) as child:
            tid = int(child.read_line().split()[0])
            runtime = processes.detection(child.pid)
            assert isinstance(runtime, PythonRuntime)
            with ProcessMemory(child.pid) as memory:
                thread = find_thread(memory, runtime, tid)
                assert thread is not None
                raw, _, _ = raw_frames(
                    memory, runtime, current_frame(memory, runtime, thread.address)
                )
            names = [
                processes.frame(child.pid, entry.code_address, entry.instruction_address)
                for entry in raw
            ]
            assert processes.frame(child.pid, 0x10, None) is None  # not a code object
            assert tracer_pid(child.pid) == 0
        assert [n.qualname if n else None for n in names] == [
            "inner_spin",
            "middle",
            "outer",
            "<module>",
        ]
    finally:
        processes.close()
    assert processes.codes.cached_count(child.pid) == 0
