"""Hand-built frames and stacks for pure tests."""

from __future__ import annotations

from perftop.model.samples import (
    KERNEL_IMAGE,
    KERNEL_MODULE,
    Frame,
    NativeCode,
    PythonCode,
    StackSample,
    python_frame,
)
from perftop.viewmodel.stacks import StackNode


def user(symbol: str, module: str = "app") -> Frame:
    return Frame(symbol, module, False)


def python(
    qualname: str, filename: str = "/srv/app/work.py", first_line: int = 10, line: int | None = 12
) -> Frame:
    return python_frame(PythonCode(qualname, filename, first_line, line))


def kernel(symbol: str) -> Frame:
    return Frame(symbol, KERNEL_MODULE, True)


def py(qualname: str, filename: str = "/srv/app/work.py", first_line: int = 1) -> Frame:
    """A Python function's frame, as the sampler names it: "qualname (work.py:first_line)"."""
    return python_frame(PythonCode(qualname, filename, first_line, first_line + 1))


def stack(
    *frames: Frame, pid: int = 100, tid: int | None = None, comm: str = "app", samples: int = 1
) -> StackSample:
    return StackSample(pid, pid if tid is None else tid, comm, tuple(frames), samples, samples * 10)


HOSTILE_QUALNAME = "Evil.\x1b[31m[bold]x[/bold];run"


def mixed_python_stacks(hostile_file: str = "/srv/app/evil.py") -> tuple[StackSample, ...]:
    """python's main, two Python functions (one seen on two lines, one named with an escape,
    markup and the folded separator), C code under them, and a syscall."""
    hostile = python(HOSTILE_QUALNAME, hostile_file, first_line=3, line=4)
    return (
        stack(
            user("main", "python3.12"),
            python("handle", line=12),
            hostile,
            user("PyLong_FromLong", "python3.12"),
            pid=30,
            comm="py",
            samples=5,
        ),
        stack(
            user("main", "python3.12"),
            python("handle", line=14),
            user("write", "libc.so.6"),
            kernel("do_syscall_64"),
            pid=30,
            comm="py",
            samples=2,
        ),
        stack(user("main", "python3.12"), python("handle", line=None), pid=30, comm="py"),
    )


def native(
    symbol: str,
    path: str = "/srv/app/bin/app",
    offset: int = 0x1100,
    *,
    module: str | None = None,
    build_id: str = "",
    source: str = "",
    line: int = 0,
) -> Frame:
    """A native function of the binary at `path`, as the symbolizer names it: its module the
    basename unless another binary of that basename took it."""
    code = NativeCode(path, build_id, offset, source, line)
    return Frame(symbol, module or path.rpartition("/")[2], False, None, None, code)


def kernel_at(symbol: str, address: int) -> Frame:
    return Frame(symbol, KERNEL_MODULE, True, None, None, NativeCode(KERNEL_IMAGE, "", address))


def callees(node: StackNode) -> tuple[StackNode, ...]:
    """What a node of the call-stack pane calls, frame by frame: a run's first hidden frame
    stands in for the run (its frames are each other's only child, the last one's children
    are the run's), so a walk down the tree meets every frame of a collapsed chain."""
    return tuple(
        child.hidden_frames[0] if child.hidden_frames else child for child in node.children
    )
