"""One object for the sampler: per-pid detection, open memory and the code cache together.

The BPF side will report (pid, code address, instruction address) for Python frames; this is the
whole user-space path for them. Detection is remembered per pid, so the caller must call
`forget(pid)` when a process exits or execs (a new image may be a new interpreter, or none).
A pid found NotPython is asked again after `RECHECK_SECONDS`: right after exec a pyenv-style
process has not mapped its libpython yet (seen in the tests), and a process can `dlopen` one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from perftop.python.code import CodeInfo, CodeReader, CodeReadError, PythonFrame
from perftop.python.memory import MemoryReadError, ProcessMemory
from perftop.python.runtime import Detection, NotPython, PythonRuntime, detect_python

RECHECK_SECONDS = 5.0
# Each remembered Python process holds one open /proc/PID/mem descriptor.
MAX_OPEN_PROCESSES = 256
# Detections remembered; as with the code cache, only a bound for callers that never forget.
MAX_DETECTIONS = 4096


class PythonProcesses:
    """Names Python frames of any process; never raises for a process that lies or vanishes."""

    def __init__(
        self,
        detect: Callable[[int], Detection] = detect_python,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._detect = detect
        self._clock = clock
        self._detections: dict[int, tuple[Detection, float]] = {}
        self._memories: OrderedDict[int, ProcessMemory] = OrderedDict()
        self.codes = CodeReader()

    def detection(self, pid: int) -> Detection:
        known = self.known(pid)
        if known is not None:
            return known
        detection = self._detect(pid)
        now = self._clock()
        self._detections[pid] = (detection, now)
        if len(self._detections) > MAX_DETECTIONS:
            self.forget(next(iter(self._detections)))
        return detection

    def known(self, pid: int) -> Detection | None:
        """The remembered detection, or None when `pid` would be classified (again) now."""
        remembered = self._detections.get(pid)
        if remembered is None:
            return None
        detection, when = remembered
        if isinstance(detection, NotPython) and self._clock() - when >= RECHECK_SECONDS:
            return None
        return detection

    def frame(
        self, pid: int, code_address: int, instruction_address: int | None
    ) -> PythonFrame | None:
        """The named frame, or None when the pid is not walkable or the code is unreadable."""
        runtime = self.detection(pid)
        if not isinstance(runtime, PythonRuntime):
            return None
        try:
            memory = self._memory(pid)
            return self.codes.frame(memory, runtime, code_address, instruction_address)
        except (MemoryReadError, CodeReadError):
            if _running(pid):
                return None  # alive: the address no longer holds that code object
            return self.codes.cached_frame(runtime, code_address, instruction_address)

    def code(self, pid: int, code_address: int) -> tuple[CodeInfo, int] | None:
        """The code object at `code_address`, checked against the target's memory now (or, for
        a process that has just exited, as last read), and the address its bytecode starts at;
        None when there is none. One read per call: callers naming many frames of one code
        object in one interval call this once and `CodeInfo.frame_at` for each."""
        runtime = self.detection(pid)
        if not isinstance(runtime, PythonRuntime):
            return None
        bytecode = code_address + runtime.offsets.code_code_adaptive
        try:
            return self.codes.code(self._memory(pid), runtime, code_address), bytecode
        except (MemoryReadError, CodeReadError):
            if _running(pid):
                return None  # alive: the address no longer holds that code object
            cached = self.codes.cached(pid, code_address)
            return (cached, bytecode) if cached is not None else None

    def forget(self, pid: int) -> None:
        self._detections.pop(pid, None)
        self.codes.forget_pid(pid)
        memory = self._memories.pop(pid, None)
        if memory is not None:
            memory.close()

    def close(self) -> None:
        for pid in list(self._memories):
            self.forget(pid)

    def _memory(self, pid: int) -> ProcessMemory:
        memory = self._memories.get(pid)
        if memory is None:
            memory = ProcessMemory(pid)
            self._memories[pid] = memory
            while len(self._memories) > MAX_OPEN_PROCESSES:
                _, oldest = self._memories.popitem(last=False)
                oldest.close()
        self._memories.move_to_end(pid)
        return memory


def _running(pid: int) -> bool:
    """False once the process has exited, a zombie included (its memory is gone already)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split()[:1]
    except OSError:
        return False
    return state not in ([b"Z"], [b"X"])
