"""CPython frames for any Python process: detection, offsets, bounded reads, naming, walking.

The BPF walker (a later step) hands user space (pid, code address, instruction address) pairs;
`PythonProcesses.frame(pid, code, instruction)` names one pair (detection, open memory and the
code cache per pid behind it), `detect_python` says whether and how a pid can be walked, and
`walk_process` does the whole walk from user space for tests and `perftop doctor`.
Nothing here imports the rest of perftop.
"""

from __future__ import annotations

from perftop.python.code import CodeReader, CodeReadError, PythonFrame
from perftop.python.memory import MemoryReader, MemoryReadError, ProcessMemory
from perftop.python.offsets import PythonOffsets
from perftop.python.processes import PythonProcesses
from perftop.python.runtime import (
    Detection,
    NotPython,
    PythonRuntime,
    UnsupportedPython,
    detect_python,
)
from perftop.python.threads import (
    PythonStack,
    RawFrame,
    ThreadState,
    find_thread,
    raw_frames,
    thread_states,
    walk_process,
    walk_thread,
)

__all__ = [
    "CodeReadError",
    "CodeReader",
    "Detection",
    "MemoryReadError",
    "MemoryReader",
    "NotPython",
    "ProcessMemory",
    "PythonFrame",
    "PythonOffsets",
    "PythonProcesses",
    "PythonRuntime",
    "PythonStack",
    "RawFrame",
    "ThreadState",
    "UnsupportedPython",
    "detect_python",
    "find_thread",
    "raw_frames",
    "thread_states",
    "walk_process",
    "walk_thread",
]
