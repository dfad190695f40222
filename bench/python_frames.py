"""What perftop.python costs per process and per frame, on every CPython on this machine.

For each interpreter (Debian's python3.11 and pyenv's 3.11.7/3.12.1/3.13.0 when present) a child
spins in `outer -> middle -> inner_spin`; this script times, as medians of many runs: detecting
the process, naming one code object cold (empty cache) and cached (one header read), and naming
the whole 4-frame stack with a warm cache. The peer in the same run is the cold read: the cache
exists to turn it into the cached one. Run as root: `.venv/bin/python bench/python_frames.py`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from perftop.python import (
    CodeReader,
    ProcessMemory,
    PythonRuntime,
    detect_python,
    find_thread,
    raw_frames,
    walk_thread,
)
from perftop.python.threads import current_frame

CHAIN = """\
import threading
def inner_spin():
    print(threading.get_native_id(), flush=True)
    while True:
        pass
def middle():
    inner_spin()
def outer():
    middle()
outer()
"""
PYENV_VERSIONS = ("3.11.7", "3.12.1", "3.13.0")
INTERPRETERS = {"debian-3.11": Path("/usr/bin/python3.11")} | {
    f"pyenv-{v}": Path.home() / f".pyenv/versions/{v}/bin/python3" for v in PYENV_VERSIONS
}
RUNS = 50


def median_microseconds(action: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def measure(program: Path, script: Path) -> str:
    child = subprocess.Popen([str(program), str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        tid = int(child.stdout.readline())
        runtime = detect_python(child.pid)
        assert isinstance(runtime, PythonRuntime), runtime
        detect = median_microseconds(lambda: detect_python(child.pid), runs=20)
        with ProcessMemory(child.pid) as memory:
            thread = find_thread(memory, runtime, tid)
            assert thread is not None
            leaf = raw_frames(memory, runtime, current_frame(memory, runtime, thread.address))[0][0]

            def cold() -> None:
                CodeReader().frame(memory, runtime, leaf.code_address, leaf.instruction_address)

            warm_reader = CodeReader()
            cold()
            warm_reader.frame(memory, runtime, leaf.code_address, leaf.instruction_address)
            cached = median_microseconds(
                lambda: warm_reader.frame(
                    memory, runtime, leaf.code_address, leaf.instruction_address
                )
            )
            walk = median_microseconds(lambda: walk_thread(memory, runtime, thread, warm_reader))
            return (
                f"{runtime.runtime_found_by:>7} {detect:9.0f} {median_microseconds(cold):9.0f}"
                f" {cached:9.1f} {walk:9.0f}"
            )
    finally:
        child.kill()
        child.wait()


def main() -> int:
    print(f"{'interpreter':14} {'found':>7} {'detect':>9} {'cold':>9} {'cached':>9} {'walk':>9}")
    print(f"{'':14} {'by':>7} {'µs':>9} {'µs':>9} {'µs':>9} {'µs':>9}")
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "chain.py"
        script.write_text(CHAIN)
        for label, program in INTERPRETERS.items():
            if not program.exists():
                print(f"{label:14} not installed")
                continue
            print(f"{label:14} {measure(program, script)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
