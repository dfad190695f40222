"""A function's code, read again from disk: its instructions (by binutils' objdump), the
source line of each where DWARF says, or a Python function's source lines.

objdump, not Capstone: it is the disassembler `perf annotate` runs, so perftop's offsets and
instruction text are perf's own; it reads DWARF line tables (-l), the binary's own or a debug
file found by build id or debuglink under /usr/lib/debug, which with Capstone would be a second
parser to write; and Debian installs it with perf. The binary is opened by perftop (inside the
process's view, regular files only, size-capped: perftop.annotate.files) and objdump reads that
descriptor, under a time limit and an output cap; any failure is a reason, never an exception.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from perftop.annotate.files import RefusedFile, open_in_view
from perftop.model.annotate import CodeKind, CodeSite
from perftop.sanitize import decode

MAX_BINARY_BYTES = 2 << 30  # objdump reads only the sections it needs; this refuses a planted giant
MAX_SOURCE_BYTES = 16 << 20
MAX_FUNCTION_BYTES = 256 << 10  # bytes of one function disassembled at most
MAX_SOURCE_LINES = 4000  # lines of one Python function shown at most
MAX_OUTPUT_BYTES = 8 << 20  # objdump's output read at most
OBJDUMP_TIMEOUT_S = 20.0
UNBOUNDED_TAIL = 64  # bytes past the last sampled offset when a function's end is not known

_INSTRUCTION = re.compile(r"^\s*([0-9a-f]+):\t(.*)$")
_LOCATION = re.compile(r"^(\S.*):(\d+)(?: \(discriminator \d+\))?$")
_TARGET = re.compile(r"^(j\w+|call\w*|loop\w*)\s+([0-9a-f]+) <")


@dataclass(frozen=True, slots=True)
class Instruction:
    offset: int  # from the function's start
    text: str  # as objdump prints it, untrusted (symbol names come from the file)
    source: tuple[str, int] | None = None  # (file, line) from DWARF
    jump_to: int | None = None  # offset of a jump's target inside the function
    jumps_out: bool = False  # a jump or call to outside the function


@dataclass(frozen=True, slots=True)
class FunctionCode:
    """What could be read of a function's code, and why not more."""

    instructions: tuple[Instruction, ...] = ()
    # Source lines: (file, line) -> its text (native code with DWARF; a Python function)
    source_text: tuple[tuple[tuple[str, int], str], ...] = ()
    reason: str = ""  # why there are no instructions (or no source lines), empty when all is well
    note: str = ""  # what the reader should know about what is shown (a deleted binary, ...)

    def source_line(self, location: tuple[str, int]) -> str | None:
        for key, text in self.source_text:
            if key == location:
                return text
        return None


def read_function_code(site: CodeSite, offsets: frozenset[int], pid_root: str = "") -> FunctionCode:
    """The code of `site` to annotate the sampled `offsets` with; never raises."""
    if site.unavailable:
        return FunctionCode(reason=site.unavailable, note=site.note)
    try:
        if site.kind is CodeKind.PYTHON:
            return _python_source(site, offsets)
        if site.kind is CodeKind.KERNEL:
            return _kernel_code(site, offsets)
        return _native_code(site, offsets, pid_root)
    except RefusedFile as error:
        return FunctionCode(reason=str(error), note=site.note)
    except (OSError, ValueError, UnicodeError, struct.error) as error:
        return FunctionCode(reason=f"unreadable: {error}", note=site.note)


def _bounds(site: CodeSite, offsets: frozenset[int]) -> tuple[int, int]:
    end = site.end
    if end <= site.start:
        end = site.start + max(offsets, default=0) + UNBOUNDED_TAIL
    return site.start, min(end, site.start + MAX_FUNCTION_BYTES)


def _open_first(paths: tuple[str, ...], limit: int) -> BinaryIO:
    refusals = []
    for path in paths:
        try:
            return open_in_view(path, limit)
        except RefusedFile as error:
            refusals.append(str(error))
    if not paths:
        raise RefusedFile("no file to read")
    raise RefusedFile(refusals[-1] if len(set(refusals)) == 1 else "; ".join(refusals))


def _native_code(site: CodeSite, offsets: frozenset[int], pid_root: str) -> FunctionCode:
    start, end = _bounds(site, offsets)
    with _open_first(site.paths, MAX_BINARY_BYTES) as binary:
        magic = binary.read(4)
        if magic != b"\x7fELF":
            return FunctionCode(reason="not an ELF file", note=site.note)
        fd = binary.fileno()
        output, failure = _objdump(
            ["-d", "-l", "-C", "-w", "--no-show-raw-insn"], start, end, f"/dev/fd/{fd}", (fd,)
        )
    instructions = _parse(output, start, end)
    if not instructions:
        return FunctionCode(reason=failure or "objdump found no instructions there", note=site.note)
    root = pid_root or _root_of(site.paths)
    return FunctionCode(instructions, _native_source(instructions, root), "", site.note)


def _kernel_code(site: CodeSite, offsets: frozenset[int]) -> FunctionCode:
    start, end = _bounds(site, offsets)
    try:
        kcore_file = _open_first(site.paths, MAX_BINARY_BYTES)
    except RefusedFile as error:
        return FunctionCode(
            reason=f"/proc/kcore is not readable ({error}): the sampled offsets, no instructions"
        )
    with kcore_file as kcore:
        code = _read_kcore(kcore, start, end - start)
    if code is None:
        return FunctionCode(reason="/proc/kcore does not map this function's address")
    with tempfile.TemporaryDirectory(prefix="perftop-annotate-") as directory:
        image = os.path.join(directory, "code")
        with open(image, "wb") as out:
            out.write(code)
        output, failure = _objdump(
            ["-D", "-b", "binary", "-m", "i386:x86-64", "-w", "--no-show-raw-insn"],
            0,
            len(code),
            image,
            (),
            adjust=start,
        )
    instructions = _parse(output, start, end)
    if not instructions:
        return FunctionCode(reason=failure or "objdump found no instructions in /proc/kcore")
    return FunctionCode(instructions, (), "", "disassembled from /proc/kcore (no line info)")


def _objdump(
    options: list[str],
    start: int,
    end: int,
    path: str,
    fds: tuple[int, ...],
    adjust: int = 0,
) -> tuple[str, str]:
    """objdump's output, and a reason when it failed."""
    command = ["objdump", *options]
    if adjust:
        command += [f"--adjust-vma=0x{adjust:x}"]
        start, end = start + adjust, end + adjust
    command += [f"--start-address=0x{start:x}", f"--stop-address=0x{end:x}", path]
    try:
        with subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=fds,
            env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        ) as process:
            assert process.stdout is not None
            try:
                raw = _read_capped(process, MAX_OUTPUT_BYTES)
            finally:
                process.kill()
                process.wait()
    except FileNotFoundError:
        return "", "objdump is not installed (Debian: apt install binutils)"
    except subprocess.TimeoutExpired:
        return "", f"objdump took longer than {OBJDUMP_TIMEOUT_S:.0f} s"
    return decode(raw), ("" if raw else "objdump could not read the binary")


def _read_capped(process: subprocess.Popen[bytes], limit: int) -> bytes:
    import selectors
    import time

    assert process.stdout is not None
    deadline = time.monotonic() + OBJDUMP_TIMEOUT_S
    chunks: list[bytes] = []
    size = 0
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while size < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, OBJDUMP_TIMEOUT_S)
            if not selector.select(left):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    return b"".join(chunks)[:limit]


def _parse(output: str, start: int, end: int) -> tuple[Instruction, ...]:
    instructions: list[Instruction] = []
    location: tuple[str, int] | None = None
    for line in output.splitlines():
        found = _INSTRUCTION.match(line)
        if found is not None:
            address = int(found.group(1), 16)
            if not start <= address < end:
                continue
            text = found.group(2).strip()
            jump_to, jumps_out = None, False
            target = _TARGET.match(text)
            if target is not None:
                destination = int(target.group(2), 16)
                if start <= destination < end:
                    jump_to = destination - start
                else:
                    jumps_out = True
            instructions.append(Instruction(address - start, text, location, jump_to, jumps_out))
            continue
        placed = _LOCATION.match(line)
        if placed is not None and not line.startswith(("Disassembly", "0")):
            location = (placed.group(1), int(placed.group(2)))
    return tuple(instructions)


def _root_of(paths: tuple[str, ...]) -> str:
    for path in paths:
        found = re.match(r"^(/proc/\d+)/", path)
        if found is not None:
            return f"{found.group(1)}/root"
    return ""


def _native_source(
    instructions: tuple[Instruction, ...], root: str
) -> tuple[tuple[tuple[str, int], str], ...]:
    """The text of each source line DWARF names, from the file as the process sees it."""
    wanted: dict[str, set[int]] = {}
    for instruction in instructions:
        if instruction.source is not None:
            wanted.setdefault(instruction.source[0], set()).add(instruction.source[1])
    found: list[tuple[tuple[str, int], str]] = []
    for filename, lines in wanted.items():
        if not filename.startswith("/"):
            continue  # a relative path names the build directory, not a file here
        try:
            with open_in_view(f"{root}{filename}" if root else filename, MAX_SOURCE_BYTES) as f:
                text = f.read(MAX_SOURCE_BYTES).decode("utf-8", errors="replace").splitlines()
        except RefusedFile:
            continue
        found += [((filename, n), text[n - 1]) for n in sorted(lines) if 0 < n <= len(text)]
    return tuple(found)


def _python_source(site: CodeSite, offsets: frozenset[int]) -> FunctionCode:
    with _open_first(site.paths, MAX_SOURCE_BYTES) as source:
        lines = source.read(MAX_SOURCE_BYTES).decode("utf-8", errors="replace").splitlines()
    first = max(site.start, 1)
    if first > len(lines):
        return FunctionCode(reason="the file on disk is shorter than the function: changed since?")
    last = _python_function_end(lines, first)
    last = max(last, max((line for line in offsets if line <= len(lines)), default=first))
    last = min(last, first + MAX_SOURCE_LINES - 1)
    text = tuple(((site.display_path, n), lines[n - 1]) for n in range(first, last + 1))
    return FunctionCode((), text, "", site.note)


def _python_function_end(lines: list[str], first: int) -> int:
    """The last line of the block that starts at `first` (decorators and def), by indentation."""
    header = lines[first - 1]
    indent = len(header) - len(header.lstrip())
    last = first
    seen_body = False
    for number in range(first + 1, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth <= indent and seen_body:
            break
        if depth > indent:
            seen_body = True
        elif not line.lstrip().startswith(("def ", "async def ", "class ", "@", ")")):
            break
        last = number
    return last


def _read_kcore(kcore: BinaryIO, address: int, size: int) -> bytes | None:
    """`size` bytes at kernel `address`, through /proc/kcore's PT_LOAD segments."""
    header = kcore.read(64)
    if header[:4] != b"\x7fELF" or header[4] != 2:
        return None
    (phoff,) = struct.unpack_from("<Q", header, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
    if phentsize < 56 or phnum > 4096:
        return None
    kcore.seek(phoff)
    table = kcore.read(phentsize * phnum)
    for index in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", table, index * phentsize
        )
        if p_type == 1 and p_vaddr <= address and address + size <= p_vaddr + p_filesz:
            kcore.seek(p_offset + address - p_vaddr)
            code = kcore.read(size)
            return code if len(code) == size else None
    return None
