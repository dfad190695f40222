"""Turn user instruction addresses into frames through a per-process resolver (injected, so
this module stays testable); kernel ones are `perftop.symbols.kernel`'s.

Caches are perftop's own and bounded: one resolver per live process (keyed by pid *and* start
time, so a reused pid never sees the old process's symbols), evicted when the process exits or
when too many are open; resolved frames are memoized per process with a cap.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from perftop.model.annotate import CodeSite
from perftop.model.reasons import Unresolved
from perftop.model.samples import Frame, NativeCode, ProcessMapping
from perftop.symbols.memo import Generations
from perftop.system.procfs import process_start_time

# bcc/source.py words a notice with this text (until it names Unresolved.KPTR itself).

BROKEN_UNWIND = Frame("[broken unwind]", "[unknown]", False, Unresolved.NOT_MAPPED)
# The outermost frame of a table walk that ended short (callers unknown), and of one cut at the
# frame limit: the frames below are real, what is above them is not known.
UNWIND_STOPPED = Frame("[unwind stopped]", "[unknown]", False, Unresolved.UNWIND_STOPPED)
MORE_FRAMES = Frame("[more frames]", "[unknown]", False)
# Frames that say the walk outward from them is not the real chain.
WALK_ENDS = (BROKEN_UNWIND, UNWIND_STOPPED, MORE_FRAMES)


class Resolution(NamedTuple):
    """What one user address is. With no symbol, `offset` is the offset into the module's file
    when the module is known (what perf prints for it), else the raw address."""

    symbol: str | None
    offset: int
    module: str | None  # path of the binary or library, or a pseudo name like "[anon]"
    reason: Unresolved | None  # why there is no symbol
    native: NativeCode | None = None  # the binary and the function's place in it, when known
    # Where the function's code is, and the address's offset into it (for annotate); None
    # when a resolver does not say (its frame's samples are then counted without an offset).
    site: CodeSite | None = None
    function_offset: int | None = None


class UserResolver(Protocol):
    """Symbols of one process."""

    def resolve(self, address: int) -> Resolution: ...

    def place(self, address: int) -> Hashable | None:
        """Where `address` is in a file whose symbols were read, said the same way in every
        process that maps that file (its identity and the offset into it): the address's frame
        is then the same in all of them. None when its frame depends on this process (no
        file, a file it could not read, or a resolver that cannot tell)."""
        ...

    def mappings(self) -> tuple[ProcessMapping, ...]: ...

    def close(self) -> None: ...


ResolverFactory = Callable[[int], UserResolver]


MAX_NAMED_BINARIES = 65_536  # past this many binaries, new ones are named by their full path


class ModuleNames:
    """A module name for each binary (path and build id) that no other binary shares: its
    basename, and for a binary whose basename an earlier one took, the shortest tail of its
    path that the others' paths do not end in ("b/chain" beside "chain"), or its build id
    when the path too is the same (a rebuilt binary an older process still runs). Frames key
    functions by (symbol, module, kernel), so two programs' `main` stay two functions, and the
    tables show the basename unless two collide. A name, once given, is kept for the session."""

    def __init__(self, limit: int = MAX_NAMED_BINARIES) -> None:
        self._limit = limit
        self._names: dict[tuple[str, str], str] = {}
        self._taken: set[str] = set()
        self._by_basename: dict[str, list[str]] = {}  # basename -> paths named so far
        self._by_path: dict[str, dict[str, str]] = {}  # path -> build id -> its name

    def name(self, path: str, build_id: str) -> str:
        key = (path, build_id)
        found = self._names.get(key)
        if found is not None:
            return found
        basename = path.rpartition("/")[2] or path
        if len(self._names) >= self._limit:
            return path  # unique enough, and no longer remembered
        of_path = self._by_path.setdefault(path, {})
        if of_path and (not build_id or "" in of_path):
            # An unknown build id (the file out of reach: another user's process without
            # CAP_SYS_PTRACE) is no sign of another binary: one libc.so.6, not a second
            # "libc.so.6 [no build id]".
            shared = of_path.get("") or next(iter(of_path.values()))
            of_path.setdefault(build_id, shared)
            self._names[key] = shared
            return shared
        others = self._by_basename.setdefault(basename, [])
        name = basename
        if basename in self._taken:
            name = _distinct_tail(path, others) or f"{basename} [{build_id[:12] or 'no build id'}]"
        suffix = 2
        unique = name
        while unique in self._taken:
            unique = f"{name} #{suffix}"
            suffix += 1
        others.append(path)
        self._taken.add(unique)
        self._names[key] = unique
        of_path[build_id] = unique
        return unique


def _distinct_tail(path: str, others: list[str]) -> str | None:
    parts = path.split("/")
    for count in range(2, len(parts) + 1):
        tail = "/".join(parts[-count:])
        if all(not (other == tail or other.endswith("/" + tail)) for other in others):
            return tail
    return None


@dataclass(slots=True)
class _ProcessSymbols:
    serial: int  # names this process in the shared caches (a pid is reused, a serial is not)
    start_time: int | None
    resolver: UserResolver
    checked: int = 0  # the interval (evict_exited generation) its start time was last compared in


class UserSymbols:
    """Per-process user symbolization with caches bounded in total, not per process: a soak
    with 10k distinct chains grew RSS by ~30 MB/min while per-process caps of 64k entries
    filled. Frames (by address) and whole chains (by the hash of their addresses) are kept in
    `Generations` shared by all processes and keyed by the process's serial, so the entries of
    an exited or replaced process are never hit again and age out: each evict_exited (once an
    interval) ages them, so what is held is what the last two intervals used. The bounds only
    cap a pathological interval; they leave room for 50k distinct stacks an interval.

    Frames are also memoized by place (`UserResolver.place`: the file's identity and the
    offset into it), across processes: every process that maps a binary, and each new process
    of a program that forks or restarts, names its addresses once for all of them."""

    def __init__(
        self,
        factory: ResolverFactory,
        max_processes: int = 256,
        max_frames_total: int = 262_144,
        max_chains_total: int = 131_072,
        start_time: Callable[[int], int | None] = process_start_time,
    ) -> None:
        self._factory = factory
        self._max_processes = max_processes
        self._frames: Generations[tuple[int, int], Frame] = Generations(max_frames_total)
        self._by_place: Generations[Hashable, Frame] = Generations(max_frames_total)
        self._chains: Generations[tuple[int, int], tuple[Frame, ...]] = Generations(
            max_chains_total
        )
        # (code site, offset into the function) of leaf addresses, for annotate
        self._sites: Generations[tuple[int, int], tuple[CodeSite | None, int | None]] = Generations(
            max_frames_total
        )
        self._serials = itertools.count()
        self._start_time = start_time
        self._processes: OrderedDict[int, _ProcessSymbols] = OrderedDict()
        self._generation = 0  # one per evict_exited call, i.e. per interval
        self._module_names = ModuleNames()

    def __len__(self) -> int:
        return len(self._processes)

    @property
    def cached(self) -> tuple[int, int]:
        """(frames, chains) held in the caches."""
        return len(self._frames), len(self._chains)

    def _process(self, pid: int) -> _ProcessSymbols:
        entry = self._processes.get(pid)
        if entry is not None and entry.checked != self._generation:
            # First use this interval: the pid may have passed to a new process since the last
            # evict_exited (which runs after the interval's stacks are symbolized), and the
            # new program's code must not be named with the old one's symbols.
            entry.checked = self._generation
            now = self._start_time(pid)
            if now is not None and now != entry.start_time:
                del self._processes[pid]
                entry.resolver.close()
                entry = None
        if entry is not None:
            self._processes.move_to_end(pid)
            return entry
        while len(self._processes) >= self._max_processes:
            _, oldest = self._processes.popitem(last=False)
            oldest.resolver.close()
        entry = _ProcessSymbols(
            next(self._serials), self._start_time(pid), self._factory(pid), self._generation
        )
        self._processes[pid] = entry
        return entry

    def frame(self, pid: int, address: int) -> Frame:
        return self._frame(self._process(pid), address)

    def leaf(self, pid: int, address: int) -> tuple[Frame, CodeSite | None, int | None]:
        """The frame of a leaf address, where its function's code is and the offset into it."""
        entry = self._process(pid)
        frame = self._frame(entry, address)
        key = (entry.serial, address)
        found = self._sites.get(key)
        if found is None:
            resolution = entry.resolver.resolve(address)
            found = (resolution.site, resolution.function_offset)
            self._sites.put(key, found)
        return frame, found[0], found[1]

    def chain(self, pid: int, addresses: tuple[int, ...]) -> tuple[Frame, ...]:
        """Frames of a whole user stack (addresses innermost first, frames outermost first).
        A hot stack recurs every interval: whole chains are memoized per process, and so are
        their callers' chains (all but the innermost address), because most new stacks are a
        known call chain caught at a new instruction of its leaf: those cost one frame."""
        entry = self._process(pid)
        key = (entry.serial, hash(addresses))
        frames = self._chains.get(key)
        if frames is None:
            leaf = self._frame(entry, addresses[0]) if addresses else None
            if leaf is None:
                frames = ()
            elif leaf.unresolved_reason is Unresolved.NOT_MAPPED:
                frames = (BROKEN_UNWIND,)
            else:
                # A chain depends on its addresses alone, so callers share the cache's keys.
                callers = addresses[1:]
                callers_key = (entry.serial, hash(callers))
                outer = self._chains.get(callers_key)
                if outer is None:
                    outer = self._walk(entry, callers)
                    self._chains.put(callers_key, outer)
                frames = (*outer, leaf)
            self._chains.put(key, frames)
        return frames

    def _walk(self, entry: _ProcessSymbols, addresses: tuple[int, ...]) -> tuple[Frame, ...]:
        inner_first = []
        for address in addresses:
            frame = self._frame(entry, address)
            if frame.unresolved_reason is Unresolved.NOT_MAPPED:
                # The unwinder walked off the real stack (code without frame pointers):
                # everything from here outward is noise. One frame says so.
                inner_first.append(BROKEN_UNWIND)
                break
            inner_first.append(frame)
        return tuple(reversed(inner_first))

    def _frame(self, entry: _ProcessSymbols, address: int) -> Frame:
        key = (entry.serial, address)
        frame = self._frames.get(key)
        if frame is None:
            # A process gone before it was first seen names its frames GONE: not the file's.
            place = entry.resolver.place(address) if entry.start_time is not None else None
            if place is not None:
                frame = self._by_place.get(place)
            if frame is None:
                frame = self._resolve(entry, address)
                if place is not None:
                    self._by_place.put(place, frame)
            self._frames.put(key, frame)
        return frame

    def mappings(self, pid: int) -> tuple[ProcessMapping, ...]:
        """Where a process mapped the binaries of the frames resolved for it."""
        entry = self._processes.get(pid)
        return entry.resolver.mappings() if entry is not None else ()

    def _resolve(self, entry: _ProcessSymbols, address: int) -> Frame:
        resolution = entry.resolver.resolve(address)
        native = resolution.native
        if native is not None:
            module = self._module_names.name(native.path, native.build_id)
        else:
            module = os.path.basename(resolution.module) if resolution.module else ""
        if resolution.symbol:
            return Frame(resolution.symbol, module or "[unknown]", False, None, None, native)
        label = module or "[unknown]"
        reason = resolution.reason or Unresolved.STRIPPED
        if entry.start_time is None:
            reason = Unresolved.GONE
        return Frame(f"{label}+0x{resolution.offset:x}", label, False, reason, None, native)

    def evict_exited(self) -> int:
        """Forget processes that have exited or whose pid now belongs to another process
        (a different start time). Returns how many were dropped."""
        self._generation += 1
        self._frames.age()
        self._by_place.age()
        self._chains.age()
        self._sites.age()
        dropped = 0
        for pid, entry in list(self._processes.items()):
            if entry.start_time is None or self._start_time(pid) != entry.start_time:
                del self._processes[pid]
                entry.resolver.close()
                dropped += 1
        return dropped

    def close(self) -> None:
        for entry in self._processes.values():
            entry.resolver.close()
        self._processes.clear()
        self._frames.clear()
        self._by_place.clear()
        self._chains.clear()
        self._sites.clear()
