"""Walk a live CPython process's threads and frames from user space, like `py-spy dump`.

`_PyRuntime.interpreters.head` -> `threads.head` -> `next`..., each thread's current frame ->
`previous`... The target keeps running while we read, so a chain can change under us: every list
is bounded, a pointer seen twice ends the walk (a loop, real or faked), and a walk that meets an
unreadable frame is retried a couple of times before its partial result is returned with the
reason. Only the main interpreter is walked (subinterpreters are rare and would need
`interpreter.next`, which the 3.11/3.12 tables do not carry).
"""

from __future__ import annotations

from dataclasses import dataclass

from perftop.python.code import CodeReader, CodeReadError, PythonFrame
from perftop.python.memory import (
    MemoryReader,
    MemoryReadError,
    ProcessMemory,
    read_pointer,
    read_u64,
    unpack_pointer,
)
from perftop.python.runtime import PythonRuntime

# A Python program with more threads than this is unusual; the BPF walker will look at fewer.
MAX_THREADS = 64
# CPython's default recursion limit is 1000, but the profiler shows the innermost frames; 128
# covers ordinary applications (Django request handling is ~60 deep).
MAX_FRAMES = 128
WALK_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ThreadState:
    address: int
    native_thread_id: int


@dataclass(frozen=True, slots=True)
class PythonStack:
    """One thread's Python frames, innermost first."""

    native_thread_id: int
    frames: tuple[PythonFrame, ...]
    truncated: bool
    """The chain went on past the frame limit."""
    error: str | None
    """Why the walk stopped early (unreadable frame, loop); None for a complete chain."""


@dataclass(frozen=True, slots=True)
class RawFrame:
    """What the BPF walker will hand user space for one frame."""

    code_address: int
    instruction_address: int


def thread_states(memory: MemoryReader, runtime: PythonRuntime) -> tuple[ThreadState, ...]:
    """The main interpreter's threads, at most MAX_THREADS, stopping at a loop or a bad read."""
    offsets = runtime.offsets
    found: list[ThreadState] = []
    try:
        interpreter = read_pointer(
            memory, runtime.runtime_address + offsets.runtime_interpreters_head
        )
        if interpreter == 0:
            return ()
        thread = read_pointer(memory, interpreter + offsets.interpreter_threads_head)
        seen: set[int] = set()
        while thread and thread not in seen and len(found) < MAX_THREADS:
            seen.add(thread)
            native_id = read_u64(memory, thread + offsets.thread_native_thread_id)
            found.append(ThreadState(thread, native_id))
            thread = read_pointer(memory, thread + offsets.thread_next)
    except MemoryReadError:
        pass
    return tuple(found)


def current_frame(memory: MemoryReader, runtime: PythonRuntime, thread: int) -> int:
    offsets = runtime.offsets
    pointer = read_pointer(memory, thread + offsets.thread_current_frame)
    if offsets.cframe_current_frame is not None and pointer:
        pointer = read_pointer(memory, pointer + offsets.cframe_current_frame)
    return pointer


def raw_frames(
    memory: MemoryReader, runtime: PythonRuntime, frame: int, max_frames: int = MAX_FRAMES
) -> tuple[list[RawFrame], bool, str | None]:
    """(code, instruction) pairs from `frame` outwards, C-stack shim frames skipped.

    Returns the frames, whether the limit cut the chain, and why the walk stopped early."""
    offsets = runtime.offsets
    frames: list[RawFrame] = []
    seen: set[int] = set()
    # Shim frames count towards the visit budget too, so a fake chain of shims still ends.
    for _ in range(max_frames * 2):
        if frame == 0:
            return frames, False, None
        if frame in seen:
            return frames, False, f"frame chain loops at {frame:#x}"
        if len(frames) >= max_frames:
            return frames, True, None
        seen.add(frame)
        try:
            header = memory.read(frame, offsets.frame_header_size)
        except MemoryReadError as error:
            return frames, False, str(error)
        owner = header[offsets.frame_owner]
        if offsets.owner_cstack is None or owner != offsets.owner_cstack:
            frames.append(
                RawFrame(
                    unpack_pointer(header, offsets.frame_code),
                    unpack_pointer(header, offsets.frame_instruction),
                )
            )
        frame = unpack_pointer(header, offsets.frame_previous)
    return frames, True, None


def walk_thread(
    memory: MemoryReader,
    runtime: PythonRuntime,
    thread: ThreadState,
    reader: CodeReader,
    max_frames: int = MAX_FRAMES,
) -> PythonStack:
    """Name the thread's frames; retried when a frame is unreadable, since the target moves."""
    best = PythonStack(thread.native_thread_id, (), False, "not walked")
    for _ in range(WALK_ATTEMPTS):
        stack = _walk_once(memory, runtime, thread, reader, max_frames)
        if stack.error is None:
            return stack
        if len(stack.frames) >= len(best.frames):
            best = stack
    return best


def walk_process(pid: int, runtime: PythonRuntime, reader: CodeReader) -> tuple[PythonStack, ...]:
    """Every thread's stack in `pid`; an unreadable process gives no stacks."""
    try:
        with ProcessMemory(pid) as memory:
            return tuple(
                walk_thread(memory, runtime, thread, reader)
                for thread in thread_states(memory, runtime)
            )
    except MemoryReadError:
        return ()


def find_thread(
    memory: MemoryReader, runtime: PythonRuntime, native_thread_id: int
) -> ThreadState | None:
    return next(
        (t for t in thread_states(memory, runtime) if t.native_thread_id == native_thread_id),
        None,
    )


def _walk_once(
    memory: MemoryReader,
    runtime: PythonRuntime,
    thread: ThreadState,
    reader: CodeReader,
    max_frames: int,
) -> PythonStack:
    try:
        frame = current_frame(memory, runtime, thread.address)
    except MemoryReadError as read_error:
        return PythonStack(thread.native_thread_id, (), False, str(read_error))
    raw, truncated, stop_reason = raw_frames(memory, runtime, frame, max_frames)
    named: list[PythonFrame] = []
    for entry in raw:
        try:
            named.append(
                reader.frame(memory, runtime, entry.code_address, entry.instruction_address)
            )
        except CodeReadError as code_error:
            return PythonStack(thread.native_thread_id, tuple(named), False, str(code_error))
    return PythonStack(thread.native_thread_id, tuple(named), truncated, stop_reason)
