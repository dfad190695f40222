"""Kernel frames from /proc/kallsyms."""

from __future__ import annotations

import bisect
from pathlib import Path

from perftop.model.annotate import CodeKind, CodeSite
from perftop.model.reasons import Unresolved
from perftop.model.samples import KERNEL_IMAGE, KERNEL_MODULE, Frame, NativeCode
from perftop.sanitize import decode


class KernelSymbols:
    """/proc/kallsyms, loaded once, searched by bisection."""

    def __init__(self, path: Path = Path("/proc/kallsyms")) -> None:
        self.addresses: list[int] = []
        self.names: list[str] = []
        self.modules: list[str] = []
        self.hidden = False
        self._interned: dict[int, Frame] = {}  # symbol index -> its Frame
        self._load(path)

    def _load(self, path: Path) -> None:
        entries: list[tuple[int, str, str]] = []
        try:
            with path.open("rb") as kallsyms:
                for line in kallsyms:
                    parts = line.split()
                    if len(parts) < 3 or parts[1] not in (b"t", b"T", b"w", b"W"):
                        continue
                    module = decode(parts[3].strip(b"[]")) if len(parts) > 3 else ""
                    entries.append((int(parts[0], 16), decode(parts[2]), module))
        except OSError:
            entries = []
        # kptr_restrict (or no privilege) shows every address as zero: nothing can be resolved,
        # and saying so beats printing the nearest wrong symbol.
        if not entries or all(address == 0 for address, _, _ in entries[:100]):
            self.hidden = True
            return
        entries.sort()
        self.addresses = [address for address, _, _ in entries]
        self.names = [name for _, name, _ in entries]
        self.modules = [f"[{module}]" if module else KERNEL_MODULE for _, _, module in entries]

    def site(self, address: int) -> tuple[CodeSite, int | None]:
        """Where a kernel address's function is (read from /proc/kcore) and the offset into it."""
        if self.hidden:
            return CodeSite(CodeKind.KERNEL, (), KERNEL_MODULE, 0, 0, Unresolved.KPTR.text), None
        index = bisect.bisect_right(self.addresses, address) - 1
        if index < 0:
            reason = Unresolved.NO_KERNEL_SYMBOL.text
            return CodeSite(CodeKind.KERNEL, (), KERNEL_MODULE, 0, 0, reason), None
        start = self.addresses[index]
        following = bisect.bisect_right(self.addresses, start)  # past aliases at `start`
        end = self.addresses[following] if following < len(self.addresses) else 0
        return CodeSite(CodeKind.KERNEL, ("/proc/kcore",), self.modules[index], start, end), (
            address - start
        )

    def frame(self, address: int) -> Frame:
        if self.hidden:
            return Frame(f"{KERNEL_MODULE}+0x{address:x}", KERNEL_MODULE, True, Unresolved.KPTR)
        index = bisect.bisect_right(self.addresses, address) - 1
        if index < 0:
            return Frame(
                f"{KERNEL_MODULE}+0x{address:x}", KERNEL_MODULE, True, Unresolved.NO_KERNEL_SYMBOL
            )
        # One Frame per kernel function, shared by every chain through it: a long session under
        # fork churn holds tens of thousands of distinct kernel chains.
        frame = self._interned.get(index)
        if frame is None:
            # The symbol's address: where a format that locates frames (pprof) puts it.
            native = NativeCode(KERNEL_IMAGE, "", self.addresses[index])
            frame = Frame(self.names[index], self.modules[index], True, None, None, native)
            self._interned[index] = frame
        return frame
