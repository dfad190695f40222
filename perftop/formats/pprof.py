"""pprof's profile.proto, gzipped, as perf's and Go's own profiles write it.

The wire format is small and stable, so it is encoded here directly (varints and
length-delimited fields) rather than through generated protobuf code pinned to one runtime; the
tests decode the output with the protobuf library and the published schema, and open it with
`go tool pprof`.

What each message holds:
- A Mapping for each place a process mapped a binary's code (memory_start, memory_limit,
  file_offset, the path as the process saw it, the GNU build id), shared by processes that
  mapped it alike; one `[kernel.kallsyms]` mapping for the kernel, as perf names it. Every
  mapping has has_functions set: perftop symbolized the frames, pprof need not.
- A Location for each function of each mapping (a frame here is a function, not an
  instruction: the stacks merge by function), at the function's address in that mapping, so
  stripped binaries' addresses, already named by their FDE's function start, are grouped.
  Python functions get one Location per line seen executing.
- A Function's filename is its source file when known (a Python code object's, DWARF line
  info for native code built with -g), empty otherwise; Line.line its line when known.
- Labels comm, pid and tid on each Sample.
- Mapping 1 is the profile's main binary when the profile is of one process, and an empty
  mapping for a profile of several, which has none (pprof heads a report with mapping 1's
  file: a random process's program would be wrong).
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from perftop import __version__
from perftop.formats.meta import ProfileMeta
from perftop.model.samples import (
    KERNEL_IMAGE,
    Frame,
    FunctionKey,
    NativeCode,
    ProcessMapping,
    StackSample,
)

# -- the wire format -----------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are ten-byte varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_packed(number: int, values: Iterable[int]) -> bytes:
    payload = b"".join(_varint(value) for value in values)
    return _field_bytes(number, payload) if payload else b""


class _Strings:
    def __init__(self) -> None:
        self.table: list[str] = [""]
        self._index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        found = self._index.get(text)
        if found is None:
            found = self._index[text] = len(self.table)
            self.table.append(text)
        return found


# -- what the messages say -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Mapping:
    start: int
    limit: int
    offset: int
    path: str
    build_id: str
    has_filenames: bool = False
    has_lines: bool = False


@dataclass(frozen=True, slots=True)
class _Function:
    name: str
    system_name: str
    filename: str
    start_line: int = 0  # 0: unknown, as proto3 leaves an unset field


def _function(frame: Frame) -> _Function:
    code = frame.python
    if code is not None:
        # pprof shows a function with its file and line itself: the bare qualname.
        return _Function(code.qualname, code.qualname, code.filename, code.first_line)
    name = frame.symbol
    if frame.kernel:
        name += " [k]"  # perf's mark, so -top and -traces tell the kernel's functions apart
    native = frame.native
    if native is not None and not frame.kernel:
        basename = native.path.rpartition("/")[2]
        if frame.module != basename and frame.resolved:
            # A second binary of the same basename (perftop.symbols.user.ModuleNames): pprof
            # aggregates functions by name and file, so the name says which binary it is.
            name = f"{name} ({frame.module})"
        return _Function(name, frame.symbol, native.source, native.line)
    return _Function(name, frame.symbol, "")


def _main_mapping(mappings: Sequence[ProcessMapping]) -> ProcessMapping | None:
    """A process's program among its mappings: not a shared library, not a pseudo file."""
    for mapping in mappings:
        name = mapping.path.rpartition("/")[2]
        if mapping.path.startswith("/") and ".so" not in name:
            return mapping
    return None


class _Builder:
    def __init__(self, meta: ProfileMeta, pids: set[int]) -> None:
        self.meta = meta
        self.strings = _Strings()
        self.mappings: dict[object, tuple[int, _Mapping]] = {}
        self.functions: dict[_Function, int] = {}
        self.function_of: dict[FunctionKey, int] = {}
        # (mapping id, address, function id, line) -> location id
        self.locations: dict[tuple[int, int, int, int], int] = {}
        self.frame_locations: dict[tuple[int, Frame], int] = {}
        self.by_path: dict[int, dict[str, list[ProcessMapping]]] = {}
        self.kernel_low = self.kernel_high = 0
        main = None
        main_pid = meta.main_pid
        if main_pid is None and len(pids) == 1:
            main_pid = next(iter(pids))  # the stacks are of one process: it is the profile's
        if main_pid is not None:
            main = _main_mapping(meta.mappings.get(main_pid, ()))
        if main is not None:
            self._mapping(main, self._process_mapping(main))
        else:
            # Mapping 1 heads the report: for several processes, nothing in particular.
            self._mapping("main", _Mapping(0, 0, 0, "", ""))

    def _mapping(self, key: object, mapping: _Mapping) -> int:
        found = self.mappings.get(key)
        if found is None:
            found = self.mappings[key] = (len(self.mappings) + 1, mapping)
        return found[0]

    @staticmethod
    def _process_mapping(mapping: ProcessMapping) -> _Mapping:
        return _Mapping(
            mapping.start, mapping.limit, mapping.offset, mapping.path, mapping.build_id
        )

    def _process_mappings(self, pid: int) -> dict[str, list[ProcessMapping]]:
        found = self.by_path.get(pid)
        if found is None:
            found = self.by_path[pid] = {}
            for mapping in self.meta.mappings.get(pid, ()):
                found.setdefault(mapping.path, []).append(mapping)
        return found

    def _native_place(self, pid: int, code: NativeCode) -> tuple[int, int]:
        """(mapping id, address) of a native function in process `pid`."""
        for mapping in self._process_mappings(pid).get(code.path, ()):
            if mapping.offset <= code.offset < mapping.offset + (mapping.limit - mapping.start):
                address = mapping.start + code.offset - mapping.offset
                return self._mapping(mapping, self._process_mapping(mapping)), address
        # Where the process mapped it is not known (a recording made before perftop kept it):
        # the file alone, the function at its file offset.
        key = ("file", code.path, code.build_id)
        return self._mapping(key, _Mapping(0, 0, 0, code.path, code.build_id)), code.offset

    def location(self, pid: int, frame: Frame) -> int:
        key = (pid, frame)
        found = self.frame_locations.get(key)
        if found is None:
            found = self.frame_locations[key] = self._location(pid, frame)
        return found

    def _location(self, pid: int, frame: Frame) -> int:
        function_key = (frame.symbol, frame.module, frame.kernel)
        function_id = self.function_of.get(function_key)
        if function_id is None:
            function = _function(frame)
            function_id = self.functions.setdefault(function, len(self.functions) + 1)
            self.function_of[function_key] = function_id
        code = frame.native
        address, line = 0, 0
        if frame.python is not None:
            python = frame.python
            line = python.line or 0
            mapping_id = self._mapping(
                ("python", python.filename),
                _Mapping(0, 0, 0, python.filename, "", has_filenames=True, has_lines=True),
            )
        elif frame.kernel:
            mapping_id = self._mapping("kernel", _Mapping(0, 0, 0, KERNEL_IMAGE, ""))
            if code is not None:
                address = code.offset
                low, high = self.kernel_low, self.kernel_high
                self.kernel_low = min(low, address) if low else address
                self.kernel_high = max(high, address + 1)
        elif code is not None:
            mapping_id, address = self._native_place(pid, code)
            line = code.line
        else:  # JIT code, a walk's own marks: a module and nothing more is known
            mapping_id = self._mapping(
                ("module", frame.module), _Mapping(0, 0, 0, frame.module, "")
            )
        location_key = (mapping_id, address, function_id, line)
        location_id = self.locations.get(location_key)
        if location_id is None:
            location_id = self.locations[location_key] = len(self.locations) + 1
        return location_id

    def encoded_mappings(self) -> bytes:
        body = bytearray()
        for key, (mapping_id, mapping) in self.mappings.items():
            if key == "kernel" and self.kernel_high:
                mapping = _Mapping(self.kernel_low, self.kernel_high, 0, KERNEL_IMAGE, "")
            body += _field_bytes(
                3,
                _field_varint(1, mapping_id)
                + _field_varint(2, mapping.start)
                + _field_varint(3, mapping.limit)
                + _field_varint(4, mapping.offset)
                + _field_varint(5, self.strings(mapping.path))
                + _field_varint(6, self.strings(mapping.build_id))
                + _field_varint(7, 1)  # has_functions
                + _field_varint(8, int(mapping.has_filenames))
                + _field_varint(9, int(mapping.has_lines)),
            )
        return bytes(body)

    def encoded_locations(self) -> bytes:
        body = bytearray()
        for (mapping_id, address, function_id, line_number), location_id in self.locations.items():
            line = _field_varint(1, function_id) + _field_varint(2, line_number)
            body += _field_bytes(
                4,
                _field_varint(1, location_id)
                + _field_varint(2, mapping_id)
                + _field_varint(3, address)
                + _field_bytes(4, line),
            )
        return bytes(body)

    def encoded_functions(self) -> bytes:
        body = bytearray()
        for function, function_id in self.functions.items():
            body += _field_bytes(
                5,
                _field_varint(1, function_id)
                + _field_varint(2, self.strings(function.name))
                + _field_varint(3, self.strings(function.system_name))
                + _field_varint(4, self.strings(function.filename))
                + _field_varint(5, function.start_line),
            )
        return bytes(body)


def pprof_profile(stacks: Sequence[StackSample], meta: ProfileMeta) -> bytes:
    """An uncompressed profile.proto message: values are [samples/count, cpu/nanoseconds]
    for a clock (each stack's summed sample_period, so the total is CPU time), [samples/count,
    EVENT/count] for another event. Profile.period is the mean period of the samples, so
    `pprof -top`'s total is samples x period."""
    builder = _Builder(meta, {stack.pid for stack in stacks})
    strings = builder.strings
    body = bytearray()
    period_unit = "nanoseconds" if meta.clock else "count"
    period_type = "cpu" if meta.clock else meta.event
    for type_name, unit in (("samples", "count"), (period_type, period_unit)):
        body += _field_bytes(
            1, _field_varint(1, strings(type_name)) + _field_varint(2, strings(unit))
        )
    pid_key, tid_key, comm_key = strings("pid"), strings("tid"), strings("comm")
    total_samples = total_period = 0
    for stack in stacks:
        location_ids = [builder.location(stack.pid, frame) for frame in reversed(stack.frames)]
        period = stack.period or stack.samples * meta.nominal_period
        total_samples += stack.samples
        total_period += period
        labels = (
            _field_bytes(3, _field_varint(1, pid_key) + _field_varint(3, stack.pid))
            + _field_bytes(3, _field_varint(1, tid_key) + _field_varint(3, stack.tid))
            + _field_bytes(3, _field_varint(1, comm_key) + _field_varint(2, strings(stack.comm)))
        )
        sample = _field_packed(1, location_ids) + _field_packed(2, [stack.samples, period])
        body += _field_bytes(2, sample + labels)
    body += builder.encoded_mappings()
    body += builder.encoded_locations()
    body += builder.encoded_functions()

    comment = strings(f"perftop {__version__}: {meta.event} at {meta.frequency_hz} Hz")
    tail = bytearray()
    tail += _field_varint(9, int(meta.start_time * 1e9))
    tail += _field_varint(10, int(meta.duration_s * 1e9))
    tail += _field_bytes(
        11, _field_varint(1, strings(period_type)) + _field_varint(2, strings(period_unit))
    )
    mean = round(total_period / total_samples) if total_samples else meta.nominal_period
    tail += _field_varint(12, mean)
    tail += _field_packed(13, [comment])
    # The string table last: every index above has been assigned by now.
    strings_part = b"".join(
        _field_bytes(6, text.encode("utf-8", "replace")) for text in strings.table
    )
    return bytes(body) + strings_part + bytes(tail)


def pprof_bytes(stacks: Sequence[StackSample], meta: ProfileMeta) -> bytes:
    """Gzipped, as pprof and its readers expect on disk."""
    return gzip.compress(pprof_profile(stacks, meta), mtime=int(meta.start_time or time.time()))
