"""Where the Python frames go in a native chain: callers ; Python frames ; native leaf."""

from __future__ import annotations

from perftop.model.samples import Frame, PythonCode, python_frame
from perftop.sampling.bcc.python_frames import merge
from perftop.symbols.user import BROKEN_UNWIND, MORE_FRAMES, UNWIND_STOPPED

INTERPRETER = "libpython3.12.so.1.0"


def native(symbol: str, module: str = INTERPRETER) -> Frame:
    return Frame(symbol, module, False)


MAIN = native("main", "python3.12")
RUN = native("Py_RunMain")
EVAL = native("_PyEval_EvalFrameDefault")
CALL = native("PyObject_Vectorcall")
LONG_ADD = native("long_add")
DEFLATE = native("deflate", "libz.so.1")
MEMCPY = native("__memmove_avx_unaligned_erms", "libc.so.6")
PYTHON = (
    python_frame(PythonCode("<module>", "/srv/app.py", 1, 20)),
    python_frame(PythonCode("compress", "/srv/app.py", 5, 6)),
)


def test_the_python_frames_take_the_eval_frames_place() -> None:
    chain = (MAIN, RUN, EVAL, CALL, EVAL, LONG_ADD)
    assert merge(chain, PYTHON, INTERPRETER) == (MAIN, RUN, *PYTHON)


def test_a_c_extension_leaf_stays_under_its_caller() -> None:
    chain = (MAIN, RUN, EVAL, CALL, DEFLATE, MEMCPY)
    assert merge(chain, PYTHON, INTERPRETER) == (MAIN, RUN, *PYTHON, DEFLATE, MEMCPY)


def test_interpreter_frames_after_the_leaf_library_are_kept() -> None:
    # Only the interpreter's frames at the start of the leaf are the function's own work.
    chain = (EVAL, DEFLATE, CALL)
    assert merge(chain, PYTHON, INTERPRETER) == (*PYTHON, DEFLATE, CALL)


def test_a_broken_walk_below_the_eval_frames_is_dropped() -> None:
    chain = (BROKEN_UNWIND, native("python3.12+0x1234", "python3.12"), EVAL, LONG_ADD)
    assert merge(chain, PYTHON, INTERPRETER) == PYTHON


def test_without_eval_frames_the_leaf_is_what_follows_the_broken_walk() -> None:
    # Debian's python3.11 has no frame pointers: the walk from a libz leaf breaks at once.
    chain = (BROKEN_UNWIND, native("python3.11+0x99", "python3.11"), DEFLATE)
    assert merge(chain, PYTHON, "python3.11") == (*PYTHON, DEFLATE)
    assert merge((BROKEN_UNWIND, EVAL), PYTHON, INTERPRETER) == PYTHON
    assert merge((), PYTHON, INTERPRETER) == PYTHON


def test_an_explanation_keeps_the_innermost_eval_frame() -> None:
    explanation = Frame("[CPython 3.10: interpreter frames not supported]", "[python]", False)
    chain = (MAIN, EVAL, CALL, EVAL, LONG_ADD)
    merged = merge(chain, (explanation,), "", keep_eval=True)
    assert merged == (MAIN, explanation, EVAL, LONG_ADD)


def test_kernel_frames_named_like_eval_are_not_eval_frames() -> None:
    kernel = Frame("_PyEval_EvalFrame_lookalike", "[kernel]", True)
    assert merge((EVAL, kernel), PYTHON, INTERPRETER) == (*PYTHON, kernel)


def test_a_table_walk_that_stopped_short_drops_its_callers_as_a_broken_one() -> None:
    chain = (UNWIND_STOPPED, native("PyObject_Call"), EVAL, LONG_ADD)
    assert merge(chain, PYTHON, INTERPRETER) == PYTHON
    assert merge((MORE_FRAMES, MAIN, EVAL), PYTHON, INTERPRETER) == PYTHON
