"""Drained counts -> StackSamples: stack ids become frames, and entries that symbolize alike
are merged on (pid, tid, comm, frames, cgroup)."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterable, Mapping

from perftop.model.annotate import CodeKind, CodeSite
from perftop.model.reasons import Unresolved
from perftop.model.samples import Frame, ProcessMapping, StackSample
from perftop.profile.aggregate import StackTotals
from perftop.profile.leaf_offsets import HistogramBuilder
from perftop.sampling.bcc.abi import STACK_SKIPPED as PERFTOP_STACK_SKIPPED
from perftop.sampling.bcc.abi import UNWIND_STOPPED, UNWIND_TRUNCATED
from perftop.sampling.bcc.drain import PYTHON_STACK, TGID, CountEntry
from perftop.sampling.bcc.python_frames import PythonFrames
from perftop.sanitize import decode
from perftop.symbols.kernel import KernelSymbols
from perftop.symbols.memo import Generations
from perftop.symbols.user import MORE_FRAMES, WALK_ENDS, UserSymbols
from perftop.symbols.user import UNWIND_STOPPED as UNWIND_STOPPED_FRAME
from perftop.system.procfs import is_kernel_thread, process_start_time

_NO_ADDRESS = "the leaf address of these samples is not known"
# "<string>", "<frozen ...>", or a path relative to a working directory that may have changed
_RELATIVE_FILE = "the code's file name is not an absolute path: no file to read its lines from"
KERNEL_CHAINS_MAX = 65536  # kernel chains kept symbolized at most (~300 bytes each); aged per drain
KERNEL_THREADS_MAX = 4096  # PIDs remembered as kernel thread or not; under fork churn all are new


class Symbolizer:
    """Kernel and user symbols for the live source, with memos that last across intervals."""

    def __init__(
        self,
        python: PythonFrames | None = None,
        start_time: Callable[[int], int | None] = process_start_time,
    ) -> None:
        self._python = python
        self._kernel = KernelSymbols()
        # Imported here, after the compile (pyelftools is ~25 ms of imports holding the GIL,
        # which the screen's start-up shares while clang runs with it released).
        from perftop.symbols.process import resolver_factory

        self._user = UserSymbols(resolver_factory(), start_time=start_time)
        self._kernel_thread: dict[int, bool] = {}
        # hash of addresses -> frames
        self._kernel_chains: Generations[int, tuple[Frame, ...]] = Generations(KERNEL_CHAINS_MAX)

    def notice(self) -> str | None:
        """What the user should be told once about symbols, if anything."""
        if self._kernel.hidden:
            return (
                f"kernel frames are unnamed: {Unresolved.KPTR.text} "
                "(perftop needs CAP_SYSLOG, or kernel.kptr_restrict=0)"
            )
        return None

    def stacks(
        self,
        entries: list[CountEntry],
        stack_ips: Mapping[int, tuple[int, ...]],
        lost: dict[str, int],
        python_frames: bool = True,
        native_ips: Mapping[int, tuple[tuple[int, ...], int]] | None = None,
        leaf_offsets: HistogramBuilder | None = None,
    ) -> tuple[StackSample, ...]:
        """One StackSample per (pid, tid, comm, frames, cgroup). Samples of a user thread with
        no user stack count in lost["user_stack_missing"]. With `python_frames`, a CPython process's
        Python frames take the place of its interpreter's (PythonFrames.stack). Given
        `leaf_offsets`, each sample's leaf address (or Python line) is added to it."""
        comms: dict[bytes, str] = {}
        python = self._python if python_frames else None
        if python is not None:
            python.observe(dict.fromkeys(entry[TGID] for entry in entries))
            python.read({entry[PYTHON_STACK] for entry in entries if entry[PYTHON_STACK]})
            read_failed, python.read_failed = python.read_failed, 0
            if read_failed:
                lost["python_stack_read_failed"] = read_failed
        # Two stack ids can symbolize alike (two addresses in one function): merged here.
        merged = StackTotals()
        for (
            pid,
            tid,
            kernel_id,
            user_id,
            raw_comm,
            python_stack,
            native_id,
            cgroup_id,
            count,
            period,
        ) in entries:
            frames: tuple[Frame, ...] = ()
            user_leaf: int | None = None
            if native_id and native_ips and native_id in native_ips:
                addresses, ending = native_ips[native_id]
                user_leaf = addresses[0] if addresses else None
                frames = self._user.chain(pid, addresses)
                if ending == UNWIND_STOPPED and frames and frames[0] not in WALK_ENDS:
                    frames = (UNWIND_STOPPED_FRAME, *frames)
                elif ending == UNWIND_TRUNCATED and frames:
                    frames = (MORE_FRAMES, *frames)
            elif user_id >= 0 and user_id in stack_ips:
                frames = self._user.chain(pid, stack_ips[user_id])
                user_leaf = stack_ips[user_id][0] if stack_ips[user_id] else None
            elif user_id == -errno.EFAULT and not self._is_kernel_thread(pid):
                lost["user_stack_missing"] = lost.get("user_stack_missing", 0) + count
            if python is not None and (native_id or user_id != PERFTOP_STACK_SKIPPED):
                frames = python.stack(pid, python_stack, frames)
            kernel_leaf: int | None = None
            if kernel_id >= 0 and kernel_id in stack_ips:
                frames += self._kernel_chain(stack_ips[kernel_id])
                kernel_leaf = stack_ips[kernel_id][0] if stack_ips[kernel_id] else None
            if leaf_offsets is not None and frames:
                self._add_leaf(leaf_offsets, pid, frames[-1], kernel_leaf, user_leaf, count)
            comm = comms.get(raw_comm)
            if comm is None:
                comm = comms[raw_comm] = decode(raw_comm)
            merged.add(pid, tid, comm, frames, count, period, cgroup_id)
        return merged.stacks()

    def _add_leaf(
        self,
        histograms: HistogramBuilder,
        pid: int,
        leaf: Frame,
        kernel_leaf: int | None,
        user_leaf: int | None,
        count: int,
    ) -> None:
        """The sample's own time was spent in `leaf`: where in it, as its kind tells."""
        function = (leaf.symbol, leaf.module, leaf.kernel)
        site: CodeSite | None = None
        offset: int | None = None
        if leaf.kernel:
            if kernel_leaf is not None:
                site, offset = self._kernel.site(kernel_leaf)
        elif leaf.python is not None:
            code = leaf.python
            site = CodeSite(
                CodeKind.PYTHON,
                (f"/proc/{pid}/root{code.filename}",),
                code.filename,
                code.first_line,
                0,
                "" if code.filename.startswith("/") else _RELATIVE_FILE,
            )
            offset = code.line
        elif user_leaf is not None:
            frame, site, offset = self._user.leaf(pid, user_leaf)
            if frame != leaf:  # the chain ended in a frame of the walk's own (broken unwind)
                site, offset = None, None
        if site is None:
            site = CodeSite(CodeKind.NATIVE, (), leaf.module, 0, 0, _NO_ADDRESS)
            offset = None
        histograms.add(pid, function, site, offset, count)

    def mappings(self, pids: Iterable[int]) -> dict[int, tuple[ProcessMapping, ...]]:
        """Where each process mapped the binaries of its native frames (for pprof): the
        resolvers' own tuples, so this is one lookup per process an interval."""
        found = {}
        for pid in pids:
            mappings = self._user.mappings(pid)
            if mappings:
                found[pid] = mappings
        return found

    def forget_unused(self) -> None:
        """Called once per drain: drop what exited processes and old kernel chains hold."""
        self._user.evict_exited()
        if self._python is not None:
            self._python.forget_exited()
        self._kernel_chains.age()  # keeps what this interval and the last one used

    def close(self) -> None:
        self._user.close()
        if self._python is not None:
            self._python.close()

    def _is_kernel_thread(self, pid: int) -> bool:
        known = self._kernel_thread.get(pid)
        if known is None:
            if len(self._kernel_thread) > KERNEL_THREADS_MAX:
                self._kernel_thread.clear()
            known = self._kernel_thread[pid] = is_kernel_thread(pid)
        return known

    def _kernel_chain(self, addresses: tuple[int, ...]) -> tuple[Frame, ...]:
        # Keyed by the addresses' hash, not the addresses: the tuple can go with the stack id
        # cache (as UserSymbols does; a 64-bit collision among this many chains is ~1e-10).
        key = hash(addresses)
        frames = self._kernel_chains.get(key)
        if frames is None:
            frames = tuple(self._kernel.frame(address) for address in reversed(addresses))
            self._kernel_chains.put(key, frames)
        return frames
