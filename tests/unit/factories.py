"""Hand-built frames and stacks for pure tests."""

from __future__ import annotations

from perftop.model.samples import KERNEL_MODULE, Frame, PythonCode, StackSample, python_frame


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
