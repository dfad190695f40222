"""Python frames for the live source: which processes the BPF program walks, the frames it
walked, named, and put in place of the interpreter's own frames in each native chain.

The kernel side (bpf/profile.bpf.c, python_stack_of) walks a sampled thread's own
`_PyInterpreterFrame` chain in any process registered in `python_procs` and stores the
(code object, instruction) pairs in `python_stacks` under a hash of the sequence, which the
sample's count key carries. Here:

- every process seen in an interval is classified once (perftop.python.detect_python, asked
  again later for a process that was not Python yet: a pyenv interpreter maps its libpython
  a moment after exec) and, when CPython can be walked, registered with its offsets;
- each stack hash is read from the map once, remembered while in use, and deleted from the
  map, so the map holds only stacks not read yet (a later sample stores its stack again);
- each code object is named from the target's memory by perftop.python, which re-checks a
  cached code object against its header on every drain, so a freed and reused address is read
  afresh, never shown under the old name;
- exited and exec'd processes are unregistered and their caches dropped.
"""

from __future__ import annotations

import ctypes as ct
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from perftop.model.reasons import Unresolved
from perftop.model.samples import Frame, PythonCode, python_frame
from perftop.python import PythonProcesses, PythonRuntime, UnsupportedPython
from perftop.python.code import CodeInfo
from perftop.python.offsets import PythonOffsets
from perftop.sampling.bcc.abi import (
    PYTHON_HEADER_BYTES,
    PYTHON_NO_OFFSET,
    PYTHON_NO_OWNER,
    PythonProc,
    PythonStack,
)
from perftop.sampling.bcc.program import Maps, lib
from perftop.symbols.memo import Generations
from perftop.symbols.user import WALK_ENDS
from perftop.system.procfs import process_start_time

# Classifying a process reads its maps and an ELF header or two (~0.1 ms); under fork churn
# every pid is new, so at most this many are classified per interval (the rest the next one).
MAX_DETECTIONS_PER_DRAIN = 64
# Raw stacks remembered: what the last two intervals used, capped.
RAW_STACKS_MAX = 65536
# The interpreter's frames that run Python code: the Python frames take their place.
EVAL_PREFIX = "_PyEval_EvalFrame"
PYTHON_MODULE = "[python]"
UNKNOWN_CODE = Frame("[unknown Python code]", PYTHON_MODULE, False, Unresolved.PYTHON_CODE_GONE)
TRUNCATED = Frame("[more Python frames]", PYTHON_MODULE, False)

RawStack = tuple[tuple[tuple[int, int], ...], bool]  # ((code, instruction) innermost first, cut)


@dataclass(frozen=True, slots=True)
class _Walked:
    """A registered process, and what says it is still the same image."""

    runtime: PythonRuntime
    start_time: int | None
    executable: str
    interpreter_module: str  # basename of the binary holding the runtime, as frames name it


def _executable(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def thread_header_size(offsets: PythonOffsets) -> int:
    """Bytes of a PyThreadState the walk reads at once: every field it reads lies in them."""
    return (
        max(offsets.thread_next, offsets.thread_native_thread_id, offsets.thread_current_frame) + 8
    )


def _proc_entry(runtime: PythonRuntime) -> PythonProc | None:
    """The program's entry for `runtime`, or None when a thread's or frame's fields lie past
    the header the program reads at once (no CPython known so far: 168 and 75 bytes at most)."""
    offsets = runtime.offsets
    cframe = offsets.cframe_current_frame
    thread_bytes, frame_bytes = thread_header_size(offsets), offsets.frame_header_size
    if max(thread_bytes, frame_bytes) >= PYTHON_HEADER_BYTES:
        return None
    return PythonProc(
        runtime=runtime.runtime_address,
        interpreters_head=offsets.runtime_interpreters_head,
        threads_head=offsets.interpreter_threads_head,
        thread_next=offsets.thread_next,
        native_thread_id=offsets.thread_native_thread_id,
        current_frame=offsets.thread_current_frame,
        cframe_current_frame=PYTHON_NO_OFFSET if cframe is None else cframe,
        frame_code=offsets.frame_code,
        frame_previous=offsets.frame_previous,
        frame_instruction=offsets.frame_instruction,
        frame_owner=offsets.frame_owner,
        owner_cstack=PYTHON_NO_OWNER if offsets.owner_cstack is None else offsets.owner_cstack,
        thread_header_size=thread_bytes,
        frame_header_size=frame_bytes,
    )


class PythonFrames:
    """The user-space half of the Python walk. Never raises for a process that lies or exits."""

    def __init__(
        self,
        maps: Maps,
        processes: PythonProcesses | None = None,
        start_time: Callable[[int], int | None] = process_start_time,
    ) -> None:
        self._start_time = start_time
        self._procs_map = maps.python_procs
        self._stacks_map = maps.python_stacks
        self._processes = processes or PythonProcesses()
        self._walked: dict[int, _Walked] = {}
        self._unsupported: dict[int, str] = {}  # pid -> why its frames cannot be walked
        self._raw: Generations[int, RawStack] = Generations(RAW_STACKS_MAX)
        self._buffer = PythonStack()
        self._named: dict[tuple[int, int, int], Frame] = {}  # this drain's (pid, code, instr)
        # This drain's Python frames of each (pid, stack hash): a stack recurs in the entries
        # of every thread and kernel stack it was sampled with.
        self._stacks: dict[tuple[int, int], tuple[Frame, ...]] = {}
        # This interval's code objects, each checked against the target once an interval
        # (by the prefetch that first meets it, or by the drain).
        self._codes: dict[tuple[int, int], tuple[CodeInfo, int] | None] = {}
        self.read_failed = 0

    # -- which processes ---------------------------------------------------------------------

    def observe(self, pids: Iterable[int], budget: int = MAX_DETECTIONS_PER_DRAIN) -> None:
        """Classify the processes of an interval that are not known yet (a bounded number)."""
        for pid in pids:
            if pid in self._walked or pid <= 0:
                continue
            if budget <= 0:
                break
            detection = self._processes.known(pid)
            if detection is None:
                budget -= 1
                detection = self._processes.detection(pid)
            if isinstance(detection, PythonRuntime):
                self._register(pid, detection)
            elif isinstance(detection, UnsupportedPython):
                self._unsupported[pid] = detection.reason

    def _register(self, pid: int, runtime: PythonRuntime) -> None:
        key, entry = ct.c_uint32(pid), _proc_entry(runtime)
        if entry is None:
            self._unsupported[pid] = "CPython's thread or frame layout is too large to walk"
            return
        if lib.bpf_update_elem(self._procs_map.map_fd, ct.byref(key), ct.byref(entry), 0) != 0:
            return  # the map is full: this process's frames stay native, tried again later
        self._unsupported.pop(pid, None)
        self._walked[pid] = _Walked(
            runtime,
            self._start_time(pid),
            _executable(pid),
            os.path.basename(runtime.binary_path),
        )

    @property
    def any_walked(self) -> bool:
        """Whether any process is registered for the program's walk."""
        return bool(self._walked)

    @property
    def walked(self) -> dict[int, PythonRuntime]:
        return {pid: walked.runtime for pid, walked in self._walked.items()}

    def forget_exited(self) -> None:
        """Once per drain: unregister processes that exited or exec'd, and drop their caches."""
        self._named = {}
        self._stacks = {}
        self._codes = {}
        self._raw.age()
        for pid, walked in list(self._walked.items()):
            start_time = self._start_time(pid)
            if start_time is None or start_time != walked.start_time:
                self._forget(pid)  # exited (or the pid is another process's now)
            elif _executable(pid) != walked.executable:
                self._forget(pid)  # exec'd: the runtime, if any, is elsewhere
        for pid in list(self._unsupported):
            if self._start_time(pid) is None:
                del self._unsupported[pid]
                self._processes.forget(pid)

    def _forget(self, pid: int) -> None:
        del self._walked[pid]
        lib.bpf_delete_elem(self._procs_map.map_fd, ct.byref(ct.c_uint32(pid)))
        self._processes.forget(pid)

    def close(self) -> None:
        self._processes.close()

    # -- the frames --------------------------------------------------------------------------

    def read(self, hashes: Iterable[int]) -> None:
        """Fetch the stacks behind `hashes` that are not remembered, then delete every one of
        them from the kernel's map (a sample after this stores its stack again)."""
        fd = self._stacks_map.map_fd
        buffer = self._buffer
        for stack_hash in hashes:
            key = ct.c_uint64(stack_hash)
            if self._raw.get(stack_hash) is None:
                if lib.bpf_lookup_elem(fd, ct.byref(key), ct.byref(buffer)) != 0:
                    self.read_failed += 1
                    continue
                depth = min(buffer.depth, len(buffer.code))
                pairs = tuple(zip(buffer.code[:depth], buffer.instruction[:depth], strict=True))
                self._raw.put(stack_hash, (pairs, bool(buffer.truncated)))
            lib.bpf_delete_elem(fd, ct.byref(key))

    def prefetch(self) -> None:
        """Between drains: read the stacks stored since the last look and name their code
        while the process still runs, so a process that exits before the drain is named too
        (its code objects were read, and checked, while it lived). Only unread stacks are in
        the map, so this costs little once the working set is known."""
        if not self._walked:
            return
        table = self._stacks_map
        fd = table.map_fd
        buffer = self._buffer
        for key in list(table.keys()):
            if lib.bpf_lookup_elem(fd, ct.byref(key), ct.byref(buffer)) != 0:
                continue
            stack_hash = key.value
            if self._raw.get(stack_hash) is None:
                depth = min(buffer.depth, len(buffer.code))
                pairs = tuple(zip(buffer.code[:depth], buffer.instruction[:depth], strict=True))
                self._raw.put(stack_hash, (pairs, bool(buffer.truncated)))
                pid = buffer.tgid
                if pid in self._walked:
                    for code in {code for code, _ in pairs}:
                        self._code(pid, code)  # read (and cached) while it lives
            lib.bpf_delete_elem(fd, ct.byref(key))

    def stack(self, pid: int, stack_hash: int, native: tuple[Frame, ...]) -> tuple[Frame, ...]:
        """`native` (a user chain, outermost first) with this sample's Python frames merged
        in: native callers ; Python frames ; native leaf. Unchanged for a process whose frames
        are not walked; an interpreter perftop cannot walk gets a frame that says so."""
        if pid not in self._walked:
            reason = self._unsupported.get(pid)
            if reason is None:
                return native
            # Where the Python frames would be (the innermost eval frame kept, to show where).
            explanation = Frame(f"[{reason}]", PYTHON_MODULE, False, Unresolved.PYTHON_UNSUPPORTED)
            return merge(native, (explanation,), "", keep_eval=True)
        key = (pid, stack_hash)
        python = self._stacks.get(key)
        if python is None:
            raw = self._raw.get(stack_hash) if stack_hash else None
            if raw is None:
                return native
            pairs, truncated = raw
            named = (self._frame(pid, code, instruction) for code, instruction in reversed(pairs))
            python = self._stacks[key] = (TRUNCATED, *named) if truncated else tuple(named)
        return merge(native, python, self._walked[pid].interpreter_module)

    def _frame(self, pid: int, code_address: int, instruction: int) -> Frame:
        key = (pid, code_address, instruction)
        frame = self._named.get(key)
        if frame is None:
            code = self._code(pid, code_address)
            if code is None:
                frame = UNKNOWN_CODE
            else:
                info, bytecode = code
                named = info.frame_at(instruction - bytecode if instruction else None)
                frame = python_frame(
                    PythonCode(named.qualname, named.filename, named.first_line, named.line)
                )
            self._named[key] = frame
        return frame

    def _code(self, pid: int, code_address: int) -> tuple[CodeInfo, int] | None:
        """The code object at `code_address`, checked against the target's memory the first
        time this interval asks."""
        code_key = (pid, code_address)
        if code_key in self._codes:
            return self._codes[code_key]
        code = self._codes[code_key] = self._processes.code(pid, code_address)
        return code


def _eval_indexes(native: tuple[Frame, ...]) -> list[int]:
    return [
        index
        for index, frame in enumerate(native)
        if frame.symbol.startswith(EVAL_PREFIX) and not frame.kernel
    ]


def _binary_name(frame: Frame) -> str:
    """The basename of a frame's binary: its module can be longer, to tell two of one name
    apart (perftop.symbols.user.ModuleNames)."""
    code = frame.native
    return frame.module if code is None else code.path.rpartition("/")[2]


def merge(
    native: tuple[Frame, ...],
    python: tuple[Frame, ...],
    interpreter_module: str,
    keep_eval: bool = False,
) -> tuple[Frame, ...]:
    """native callers ; `python` ; native leaf.

    The callers are the native frames below the outermost eval frame (main, Py_RunMain, a
    thread's start), dropped when the walk broke below it (no frame pointers: they are noise,
    and the Python frames already start at the root). The leaf is what ran above the innermost
    eval frame, without the interpreter's own frames at its start (they are the Python
    function's own work, as py-spy counts it): a C extension, libc, and what they called.
    Native frames between eval frames (a builtin calling back into Python) are left out."""
    evals = _eval_indexes(native)
    if evals:
        callers = native[: evals[0]]
        leaf = native[evals[-1] + (0 if keep_eval else 1) :]
    else:
        callers, leaf = (), native
    if any(frame in WALK_ENDS for frame in callers):
        callers = ()
    ends = [index for index, frame in enumerate(leaf) if frame in WALK_ENDS]
    if ends:
        leaf = leaf[ends[-1] + 1 :]
    if interpreter_module:
        start = 0
        while start < len(leaf) and _binary_name(leaf[start]) == interpreter_module:
            start += 1
        leaf = leaf[start:]
    return (*callers, *python, *leaf)


def python_stack_hashes(entries: Iterable[Any]) -> set[int]:
    return {entry.python_stack for entry in entries if entry.python_stack}
