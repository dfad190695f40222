"""Show the screen before the BPF program is ready.

Compiling the program takes seconds (clang inside libbcc); a top-like tool must paint at once.
`DeferredSource` builds the real source on a thread and, until it is ready, answers each interval
with the processes psutil sees (CPU%, RSS, threads: no stacks yet), so the first screen is
useful and the first profile arrives one interval after the compile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from perftop.config import SamplerConfig
from perftop.model.samples import Interval, ProcessInfo
from perftop.sampling.source import IntervalSource, SourceError

if TYPE_CHECKING:
    import psutil

LOADING_NOTICE = "loading the BPF program: processes from psutil until the first profile"


class DeferredSource:
    live = True

    def __init__(self, build: Callable[[], IntervalSource], config: SamplerConfig) -> None:
        self._config = config
        self._source: IntervalSource | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Any]] = []
        self._last = time.monotonic()
        self._announced = False
        self._processes: dict[int, psutil.Process] = {}
        self._builder = threading.Thread(target=self._build, args=(build,), name="bpf-compile")
        self._builder.daemon = True
        self._started = False

    def _build(self, build: Callable[[], IntervalSource]) -> None:
        try:
            source = build()
        except BaseException as error:  # reported to the screen by next_interval
            self._error = error
        else:
            with self._lock:
                self._source = source
                for name, argument in self._pending:
                    getattr(source, name)(argument)
                self._pending.clear()
        finally:
            self._ready.set()

    # -- IntervalSource --------------------------------------------------------------------------

    @property
    def event(self) -> str:
        return self._source.event if self._source else self._config.event

    @property
    def frequency_hz(self) -> int:
        return self._source.frequency_hz if self._source else self._config.frequency_hz

    def events(self) -> Mapping[str, str | None]:
        if self._source is not None:
            return self._source.events()
        from perftop.model.events import EVENTS
        from perftop.sampling.bcc.program import probe_event

        return {name: probe_event(event) for name, event in EVENTS.items()}

    def start(self) -> None:
        """Begin the compile (idempotent; the first next_interval calls it). The screen's
        sampler starts after the first paint: started before the screen's imports, the
        compile's own (bcc, LLVM, ~65 ms holding the GIL) delayed the first screen by ~0.1 s
        and brought the first profile no sooner."""
        if not self._started:
            self._started = True
            self._builder.start()

    def next_interval(self) -> Interval | None:
        self.start()
        if self._source is None:
            deadline = self._last + self._config.interval_s
            # Wake as soon as the program is ready: its first interval starts then.
            self._ready.wait(max(0.0, deadline - time.monotonic()))
            if self._closed.is_set():
                return None
            if self._error is not None:
                error = self._error
                raise error if isinstance(error, SourceError) else SourceError(str(error))
            if self._source is None:
                self._last = time.monotonic()
                return self._processes_preview()
        return self._source.next_interval()

    def _forward(self, name: str, argument: Any) -> None:
        with self._lock:
            if self._source is None:
                self._pending.append((name, argument))
                return
            source = self._source
        getattr(source, name)(argument)

    def set_pid_filter(self, pids: Sequence[int]) -> None:
        self._forward("set_pid_filter", tuple(pids))

    def set_cgroup_filter(self, paths: Sequence[str]) -> None:
        self._forward("set_cgroup_filter", tuple(paths))

    def set_event(self, event: str) -> None:
        self._forward("set_event", event)

    def set_frequency(self, hz: int) -> None:
        self._forward("set_frequency", hz)

    def set_stack_mode(self, mode: str) -> None:
        self._forward("set_stack_mode", mode)

    def set_python_frames(self, walk: bool) -> None:
        self._forward("set_python_frames", walk)

    def interrupt(self) -> None:
        self._closed.set()
        self._ready.set()
        if self._source is not None:
            self._source.interrupt()

    def close(self) -> None:
        self.interrupt()
        # A compile in flight cannot be stopped; it holds nothing in the kernel until it loads,
        # and what it loads is closed here (or freed by the kernel when the process exits).
        if self._started:
            self._builder.join(timeout=10)
        if self._source is not None:
            self._source.close()

    # -- before the program is ready -------------------------------------------------------------

    def _processes_preview(self) -> Interval:
        import psutil  # here, on the sampler thread: the first screen does not wait for it

        infos: dict[int, ProcessInfo] = {}
        seen = set()
        for process in psutil.process_iter(["pid", "name", "username", "cmdline", "num_threads"]):
            pid = process.pid
            seen.add(pid)
            tracked = self._processes.setdefault(pid, process)
            try:
                cpu = tracked.cpu_percent(None)
                rss = tracked.memory_info().rss
            except psutil.Error:
                continue
            info = process.info
            if cpu > 0:
                infos[pid] = ProcessInfo(
                    pid=pid,
                    user=info.get("username") or "",
                    cmdline=" ".join(info.get("cmdline") or ()),
                    threads=info.get("num_threads") or 0,
                    cpu_percent=cpu,
                    rss_bytes=rss,
                    name=info.get("name") or "",
                )
        for pid in set(self._processes) - seen:
            del self._processes[pid]
        busiest = sorted(infos.values(), key=lambda info: (-info.cpu_percent, info.pid))[:200]
        notices = () if self._announced else (LOADING_NOTICE,)
        self._announced = True
        return Interval(
            timestamp=time.time(),
            interval_s=self._config.interval_s,
            event=self._config.event,
            frequency_hz=self._config.frequency_hz,
            lost={},
            cpus=(),
            stacks=(),
            processes={info.pid: info for info in busiest},
            stack_mode=self._config.stack_mode,
            python_frames=self._config.python_frames,
            pid_filter=self._config.pids,
            cgroup_filter=self._config.cgroups,
            headers="(loading)",
            notices=notices,
            preview=True,
        )
