"""PythonProcesses' per-pid memory of detections, with a fake detector and clock."""

from __future__ import annotations

from perftop.python.processes import RECHECK_SECONDS, PythonProcesses
from perftop.python.runtime import Detection, NotPython, UnsupportedPython


class CountingDetector:
    def __init__(self, result: Detection) -> None:
        self.result = result
        self.calls = 0

    def __call__(self, pid: int) -> Detection:
        self.calls += 1
        return self.result


def test_not_python_is_asked_again_only_after_the_recheck_interval() -> None:
    now = [100.0]
    detector = CountingDetector(NotPython(7, "no runtime yet"))
    processes = PythonProcesses(detect=detector, clock=lambda: now[0])
    processes.detection(7)
    now[0] += RECHECK_SECONDS / 2
    processes.detection(7)
    assert detector.calls == 1
    now[0] += RECHECK_SECONDS
    processes.detection(7)
    assert detector.calls == 2


def test_unsupported_is_remembered_until_forgotten() -> None:
    detector = CountingDetector(UnsupportedPython(7, "CPython 3.10: not supported"))
    processes = PythonProcesses(detect=detector, clock=lambda: 0.0)
    assert processes.frame(7, 0x1000, None) is None
    processes.detection(7)
    assert detector.calls == 1
    processes.forget(7)
    processes.detection(7)
    assert detector.calls == 2
