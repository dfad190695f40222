"""What the benchmarks share: building the C workloads, starting and always stopping process
groups, CPU time of process trees, terminals (tmux panes and bare ptys read byte by byte),
kernel.bpf_stats_enabled, and the figures each script hands to bench/run_all.py.

Every benchmark runs standalone and prints its own table; with `--json FILE` it also writes its
figures there, which is how run_all.py builds bench/RESULTS.md without a number typed by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import re
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))  # the benchmarks read some of perftop's own definitions
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# perftop exactly as `make run` starts it, from this tree.
PERFTOP = [sys.executable, "-m", "perftop"]
# Every terminal here: a common remote TERM and no COLORTERM (SSH does not forward it by
# default), so every program picks its colours the same way.
TERMINAL_ENV = {"TERM": "xterm-256color"}
COLS, ROWS = 120, 40


# Figures -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, its peer from the same run, and the target it is judged against."""

    name: str
    unit: str
    perftop: float | None
    peer_name: str = ""
    peer: float | None = None
    target: str = ""
    met: bool | None = None  # None: reported, not judged
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """perftop / peer; None when either is not positive (a slowdown within the noise)."""
        if self.perftop is None or self.peer is None or self.perftop < 0 or self.peer <= 0:
            return None
        return self.perftop / self.peer


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the figures to FILE (run_all.py)"
    )


def write_figures(path: Path | None, figures: Sequence[Figure]) -> None:
    if path is not None:
        path.write_text(json.dumps([asdict(figure) for figure in figures], indent=1) + "\n")


def read_figures(path: Path) -> list[Figure]:
    return [Figure(**item) for item in json.loads(path.read_text())]


def verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "-"}[met]


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_figures(figures: Sequence[Figure]) -> None:
    """The table every script ends with: figure, perftop, peer, ratio, target, verdict."""
    rows = [
        (
            f"{figure.name} ({figure.unit})",
            number(figure.perftop),
            f"{number(figure.peer)} {figure.peer_name}".strip() if figure.peer_name else "-",
            number(figure.ratio),
            figure.target or "-",
            verdict(figure.met),
        )
        for figure in figures
    ]
    header = ("figure", "perftop", "peer", "ratio", "target", "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def all_met(figures: Sequence[Figure]) -> bool:
    return all(figure.met is not False for figure in figures)


def report_figures(figures: Sequence[Figure], json_path: Path | None) -> int:
    """Print the figures, hand them to run_all.py, and the exit status: 0 when all are met."""
    print_figures(figures)
    write_figures(json_path, figures)
    return 0 if all_met(figures) else 1


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# Leaving cleanly -----------------------------------------------------------------------------


def _leave(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_cleanly_on_signals() -> None:
    """SIGTERM and SIGHUP unwind like ^C does, so every `finally` stops what it started and
    puts kernel settings back."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _leave)


def stop_group(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM to the process group (perftop detaches its probes on it), SIGKILL after `grace`."""
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # anything it left behind in its group
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class Group:
    """Processes started in their own process groups, all stopped when the block ends."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in reversed(self.processes):
            stop_group(process)

    def start(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        process: subprocess.Popen[bytes] = subprocess.Popen(
            list(argv),
            start_new_session=True,
            **kwargs,  # type: ignore[call-overload]
        )
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        stop_group(process)
        self.processes.remove(process)


# Workloads -----------------------------------------------------------------------------------


def build(source: str, workdir: Path, *, stripped: bool = False) -> Path:
    """Compile bench/<source> the way perf and perftop can walk it: -O0, frame pointers. With
    `stripped`: no frame pointers and no symbol table (`strip`), as a distribution ships a
    binary, so only its .eh_frame unwind tables can walk it."""
    binary = workdir / (Path(source).stem + ("-stripped" if stripped else ""))
    frames = "-fomit-frame-pointer" if stripped else "-fno-omit-frame-pointer"
    subprocess.run(["gcc", "-O0", frames, "-o", str(binary), str(BENCH / source)], check=True)
    if stripped:
        subprocess.run(["strip", str(binary)], check=True)
    return binary


def start_stackgen(
    group: Group, binary: Path, chains: int, copies: int, seconds: float = 3600
) -> list[subprocess.Popen[bytes]]:
    """`copies` generators, one per CPU when they are as many as the CPUs."""
    workers = []
    for copy in range(copies):
        argv = [str(binary), str(chains), str(int(seconds))]
        if copies == os.cpu_count():
            argv = ["taskset", "-c", str(copy), *argv]
        workers.append(group.start(argv))
    return workers


# The busy box of the steady-state figures (issue 15): both CPUs busy, with frames of every kind
# perftop walks. Debian's interpreter is stripped and has no frame pointers.
DEBIAN_PYTHON = Path("/usr/bin/python3.11")
BUSY_BOX_LOAD = (
    "stackgen (frame pointers) + stackgen (stripped, no frame pointers) + "
    "Debian python3.11 bench/python_work.py"
)


def start_busy_box(group: Group, workdir: Path, chains: int) -> list[subprocess.Popen[bytes]]:
    """Three CPU-bound processes on the 2 CPUs: stackgen with frame pointers, a stripped copy
    without them (table unwinding, no symbols), and a pure-Python busy loop in Debian's
    python3.11 (Python frames, the interpreter itself walked by its tables)."""
    if not DEBIAN_PYTHON.exists():
        raise RuntimeError(
            f"{DEBIAN_PYTHON} is missing: the busy-box load needs Debian's python3.11"
        )
    workers = [
        group.start([str(build("stackgen.c", workdir)), str(chains), "3600"]),
        group.start([str(build("stackgen.c", workdir, stripped=True)), str(chains), "3600"]),
        group.start([str(DEBIAN_PYTHON), str(BENCH / "python_work.py"), "3600"]),
    ]
    return workers


# CPython interpreters ------------------------------------------------------------------------

PYENV_VERSIONS = ("3.11.7", "3.12.1", "3.13.0")
# py-spy, the Python benchmarks' oracle: pinned in pyproject's dev extras, so in the venv.
PY_SPY = Path(sys.executable).parent / "py-spy"


def pyenv_root() -> Path:
    try:
        done = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True)
        return Path(done.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return Path.home() / ".pyenv"


def python_interpreters() -> dict[str, Path]:
    """Every CPython the Python benchmarks profile, by label: Debian's (stripped, no frame
    pointers) and pyenv's. Some may be missing on a machine; the caller says which."""
    root = pyenv_root()
    return {"debian-3.11": Path("/usr/bin/python3.11")} | {
        f"pyenv-{version}": root / "versions" / version / "bin" / "python3"
        for version in PYENV_VERSIONS
    }


def waiting_for_signal(pid: int) -> bool:
    """Whether `pid` sleeps in sigwait() (bench/python_work.py --wait, until SIGUSR1). Its
    SigBlk cannot tell: the kernel unblocks the awaited signals for the wait."""
    try:
        return "sigtimedwait" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def child_pids(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# Process trees -------------------------------------------------------------------------------


def _read_stat(pid: int) -> str | None:
    try:
        # A comm is any bytes a process chose (the fault tests use invalid UTF-8).
        return Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    text = _read_stat(pid)
    if text is None:
        return None
    return text[text.rindex(")") + 2 :].split()  # the comm may hold spaces and parentheses


def tree_pids(root: int) -> list[int]:
    """`root` and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of a process tree: every live member's own time and the time of the
    children each has reaped (a child that exits mid-window moves into its parent's cutime)."""
    total = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields is not None:
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / CLOCK_TICKS


def system_busy_seconds() -> float:
    """CPU seconds all CPUs spent not idle, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def busy_strangers(seconds: float = 1.0, threshold: float = 5.0) -> list[str]:
    """Processes outside this benchmark's tree using more than `threshold` % of a CPU: others
    sharing the machine, named in the results so a noisy run can be recognised."""
    ours = set(tree_pids(os.getpid()))

    def times() -> dict[int, tuple[str, int]]:
        found = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in ours:
                text = _read_stat(int(entry))
                if text is None:
                    continue
                comm = printable(text[text.index("(") + 1 : text.rindex(")")])
                fields = text[text.rindex(")") + 2 :].split()
                found[int(entry)] = (comm, int(fields[11]) + int(fields[12]))
        return found

    before = times()
    time.sleep(seconds)
    after = times()
    busy = []
    for pid, (comm, ticks) in after.items():
        if pid in before:
            percent = 100.0 * (ticks - before[pid][1]) / CLOCK_TICKS / seconds
            if percent > threshold:
                busy.append(f"{comm}[{pid}] {percent:.0f}%")
    return busy


def printable(text: str, limit: int = 24) -> str:
    """A process name fit for a table: no control characters, no Markdown table bars."""
    kept = "".join(char if char.isprintable() and char not in "|`" else "?" for char in text)
    return kept[:limit]


def rss_kib(pid: int) -> int:
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * PAGE_SIZE // 1024


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# Terminals -----------------------------------------------------------------------------------


def terminal_command(argv: Sequence[str]) -> str:
    """A shell line that runs `argv` in this tree with the common terminal settings."""
    env = ["env", "-u", "COLORTERM", *(f"{key}={value}" for key, value in TERMINAL_ENV.items())]
    return f"cd {shlex.quote(str(ROOT))} && exec {shlex.join([*env, *argv])}"


class TmuxPane:
    """A program in a detached tmux session of COLS x ROWS on a private server; the server and
    the program's whole process tree are gone when the block ends."""

    def __init__(self, argv: Sequence[str], cols: int = COLS, rows: int = ROWS) -> None:
        self.socket = f"perftop-bench-{os.getpid()}-{id(self)}"
        self.argv = list(argv)
        self.cols, self.rows = cols, rows
        self.pid = 0

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def __enter__(self) -> TmuxPane:
        try:
            self.tmux(
                "new-session",
                "-d",
                "-x",
                str(self.cols),
                "-y",
                str(self.rows),
                "-s",
                "bench",
                terminal_command(self.argv),
            )
            self.pid = int(self.tmux("list-panes", "-t", "bench", "-F", "#{pane_pid}").strip())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        members = tree_pids(self.pid) if self.pid else []
        with contextlib.suppress(subprocess.CalledProcessError):
            self.tmux("kill-server")  # SIGHUP to the pane: perftop and perf top leave on it
        deadline = time.monotonic() + 5.0
        while members and time.monotonic() < deadline:
            members = [pid for pid in members if _stat_fields(pid) is not None]
            time.sleep(0.05)
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pipe_to(self, path: Path) -> None:
        """Copy everything the program writes to its terminal into `path` from now on."""
        self.tmux("pipe-pane", "-t", "bench", "-O", f"cat >> {shlex.quote(str(path))}")

    def stop_piping(self) -> None:
        self.tmux("pipe-pane", "-t", "bench")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "bench")

    def alive(self) -> bool:
        return _stat_fields(self.pid) is not None


class PtyProcess:
    """A program on a pty of COLS x ROWS that nobody else reads: every byte it writes is kept
    with the monotonic time it arrived, so a benchmark can time when something was painted."""

    def __init__(self, argv: Sequence[str], cols: int = COLS, rows: int = ROWS) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {key: value for key, value in os.environ.items() if key != "COLORTERM"}
        env.update(TERMINAL_ENV)
        self.chunks: list[tuple[float, bytes]] = []
        self._arrived = threading.Condition()
        self.started = time.monotonic()
        try:
            self.process = subprocess.Popen(
                list(argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=ROOT,
                env=env,
                start_new_session=True,
                preexec_fn=_take_terminal,  # the pty becomes its controlling terminal
            )
        finally:
            os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the other side is closed
                data = b""
            with self._arrived:
                if not data:
                    self.chunks.append((time.monotonic(), b""))
                    self._arrived.notify_all()
                    return
                self.chunks.append((time.monotonic(), data))
                self._arrived.notify_all()

    def __enter__(self) -> PtyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        stop_group(self.process)
        self._reader.join(2.0)
        os.close(self.master)

    def mark(self) -> int:
        """A position in the output: `wait_for` after it sees only what came later."""
        with self._arrived:
            return len(self.chunks)

    def wait_for(self, pattern: bytes, since: int = 0, timeout: float = 30.0) -> float | None:
        """The arrival time of the chunk that completed the first match of `pattern` after
        position `since`; None after `timeout` seconds or when the program ends first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                ends, buffer = [], b""
                for arrived, data in self.chunks[since:]:
                    buffer += data
                    ends.append((len(buffer), arrived))
                match = regex.search(buffer)
                if match:
                    return next(arrived for end, arrived in ends if end >= match.end())
                if self.chunks[since:] and self.chunks[-1][1] == b"":
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._arrived.wait(remaining)

    def send(self, data: bytes) -> float:
        """Type `data`; the time it was written."""
        os.write(self.master, data)
        return time.monotonic()

    def output(self, since: int = 0) -> bytes:
        with self._arrived:
            return b"".join(data for _, data in self.chunks[since:])


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# Kernel settings -----------------------------------------------------------------------------


BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


@contextlib.contextmanager
def bpf_stats_enabled() -> Iterator[None]:
    """kernel.bpf_stats_enabled=1 for the block; the previous value is put back on every way
    out (with exit_cleanly_on_signals, SIGTERM and SIGHUP too)."""
    previous = BPF_STATS.read_text().strip()
    BPF_STATS.write_text("1\n")
    try:
        yield
    finally:
        BPF_STATS.write_text(previous + "\n")


# The machine ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    perf = subprocess.run(["perf", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "kernel": platform.release(),
        "cpus": str(os.cpu_count()),
        "cpu_model": model,
        "memory": f"{os.sysconf('SC_PHYS_PAGES') * PAGE_SIZE / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "perf": perf or "not found",
    }


# perftop's screen once it has profile data, not just a frame (its processes from psutil,
# before the BPF program is ready, come with 0 samples/s).
PERFTOP_READY = re.compile(r"(?<![\d,])[1-9][\d,]* samples/s")
