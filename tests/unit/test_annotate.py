"""Annotate without a kernel: the bounded histograms, reading a function's code from a binary
built here, and the lines that lay one over the other."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from perftop.annotate.cache import CodeCache
from perftop.annotate.code import FunctionCode, Instruction, read_function_code
from perftop.annotate.files import RefusedFile, open_in_view
from perftop.model.annotate import CodeKind, CodeSite, OffsetHistogram
from perftop.model.samples import Interval
from perftop.profile.accumulate import DecayingAccumulation
from perftop.profile.leaf_offsets import HistogramBuilder, function_histogram
from perftop.symbols.elf import ElfCache
from perftop.symbols.process import NativeResolver
from perftop.viewmodel.annotate import annotate, annotation_json, annotation_text

HOT_C = Path(__file__).parents[1] / "data" / "annotate" / "hot.c"
HOT = ("hot", "hot", False)


def site(path: Path, start: int = 0, end: int = 0, kind: CodeKind = CodeKind.NATIVE) -> CodeSite:
    return CodeSite(kind, (str(path),), str(path), start, end)


def interval(histograms: dict) -> Interval:  # type: ignore[type-arg]
    return Interval(0.0, 1.0, "cpu-clock", 99, {}, (), (), {}, leaf_offsets=histograms)


@pytest.fixture(scope="module")
def hot_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("hot") / "hot"
    subprocess.run(["gcc", "-O1", "-g", "-o", str(binary), str(HOT_C)], check=True)
    return binary


def symbol_range(binary: Path, name: str) -> tuple[int, int]:
    out = subprocess.run(["nm", "-S", str(binary)], capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3] == name:
            start = int(fields[0], 16)
            return start, start + int(fields[1], 16)
    raise AssertionError(f"{name} not in {binary}")


# The histograms ------------------------------------------------------------------------------


def test_offsets_past_the_bound_are_counted_not_dropped() -> None:
    builder = HistogramBuilder(limit=2)
    code = site(Path("/bin/true"))
    for offset in (0, 4, 8, 8, 12):
        builder.add(1, HOT, code, offset, 1)
    builder.add(1, HOT, code, None, 3)  # no address known
    histogram = builder.histograms()[(1, HOT)]
    assert histogram.counts == {0: 1, 4: 1}
    assert histogram.overflow == 3  # 8, 8 and 12
    assert histogram.unplaced == 3
    assert histogram.total == 8


def test_the_accumulation_fades_histograms_with_the_stacks() -> None:
    code = site(Path("/bin/true"))
    accumulation = DecayingAccumulation(keep=0.5)
    first = accumulation.add(interval({(1, HOT): OffsetHistogram(code, {0: 8.0, 4: 1.0})}))
    assert first.leaf_offsets[(1, HOT)].counts == {0: 8.0, 4: 1.0}
    second = accumulation.add(interval({(1, HOT): OffsetHistogram(code, {4: 2.0})}))
    # 8 * 0.5 + 0 and 1 * 0.5 + 2
    assert second.leaf_offsets[(1, HOT)].counts == {0: 4.0, 4: 2.5}
    for _ in range(6):
        faded = accumulation.add(interval({}))
    assert faded.leaf_offsets == {}  # under half a sample: gone, as cold stacks go
    accumulation.add(interval({(1, HOT): OffsetHistogram(code, {4: 2.0})}))
    accumulation.reset()
    assert accumulation.add(interval({})).leaf_offsets == {}


def test_a_view_sums_the_processes_it_shows() -> None:
    code = site(Path("/bin/true"))
    histograms = {
        (1, HOT): OffsetHistogram(code, {0: 3.0}),
        (2, HOT): OffsetHistogram(code, {0: 1.0, 4: 5.0}, overflow=1.0),
    }
    both = function_histogram(histograms, HOT)
    assert both is not None and both.counts == {0: 4.0, 4: 5.0} and both.overflow == 1.0
    one = function_histogram(histograms, HOT, pids=(1,))
    assert one is not None and one.counts == {0: 3.0}
    assert function_histogram(histograms, HOT, pids=(3,)) is None


# Reading the code ----------------------------------------------------------------------------


def test_instructions_and_source_lines_of_a_function(hot_binary: Path) -> None:
    start, end = symbol_range(hot_binary, "hot")
    code = read_function_code(site(hot_binary, start, end), frozenset())
    assert code.reason == ""
    texts = [instruction.text for instruction in code.instructions]
    assert any(text.startswith("div") for text in texts), texts
    assert code.instructions[0].offset == 0
    assert all(0 <= i.offset < end - start for i in code.instructions)
    # The loop's branch back is a jump inside the function, to an earlier instruction.
    back = [i for i in code.instructions if i.jump_to is not None and i.jump_to < i.offset]
    assert back, texts
    # DWARF names the hot line, and its text is read from the source file.
    div = next(i for i in code.instructions if i.text.startswith("div"))
    assert div.source == (str(HOT_C), 7)
    assert "the hot line" in (code.source_line((str(HOT_C), 7)) or "")


def test_shares_sum_to_the_whole_and_the_hot_line_is_marked(hot_binary: Path) -> None:
    start, end = symbol_range(hot_binary, "hot")
    code = read_function_code(site(hot_binary, start, end), frozenset())
    div = next(i for i in code.instructions if i.text.startswith("div"))
    after = code.instructions[code.instructions.index(div) + 1]
    # A sample's address lands after the slow instruction (skid): counted where it landed.
    histogram = OffsetHistogram(
        site(hot_binary, start, end), {after.offset: 90.0, 0: 6.0, div.offset + 1: 2.0}, 2.0
    )
    annotation = annotate(HOT, histogram, code)
    rows = [line for line in annotation.lines if not line.is_source]
    assert sum(line.percent for line in rows) == pytest.approx(98.0)  # 2% beyond the bound
    assert annotation.other_samples == 2.0
    hottest = [line for line in rows if line.hottest]
    assert [line.offset for line in hottest] == [after.offset]
    # div+1 is inside div: counted for div
    assert next(line for line in rows if line.offset == div.offset).samples == 2.0
    source_rows = [line for line in annotation.lines if line.is_source]
    marked = [line for line in source_rows if line.hottest]
    assert len(marked) == 1 and marked[0].source == "hot.c:7", source_rows
    assert "the hot line" in marked[0].text
    payload = annotation_json(annotation)
    assert payload["symbol"] == "hot" and payload["instructions"]
    assert set(payload["instructions"][0]) == {"offset", "text", "samples", "percent", "source"}
    assert "hot.c:7" in annotation_text(annotation)


def test_a_stripped_function_without_an_end_is_read_to_its_samples(hot_binary: Path) -> None:
    start, _ = symbol_range(hot_binary, "hot")
    code = read_function_code(site(hot_binary, start, 0), frozenset({0x10}))
    assert code.instructions and code.instructions[-1].offset < 0x10 + 64


def test_a_corrupt_binary_gives_the_offsets_and_a_reason(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\x7fELF" + os.urandom(4096))
    code = read_function_code(site(bogus, 0x1000, 0x1100), frozenset({4}))
    assert code.instructions == () and code.reason
    not_elf = tmp_path / "text"
    not_elf.write_text("hello")
    assert read_function_code(site(not_elf, 0, 16), frozenset()).reason == "not an ELF file"
    annotation = annotate(HOT, OffsetHistogram(site(bogus), {4: 3.0, 8: 1.0}), code)
    assert [line.text for line in annotation.lines] == ["+0x4", "+0x8"]
    assert annotation.lines[0].hottest and annotation.reason


def test_jit_and_missing_code_give_the_offsets_with_the_reason(tmp_path: Path) -> None:
    jit = CodeSite(CodeKind.NATIVE, (), "[anon]", 0x7F00, 0, "JIT code: no file")
    code = read_function_code(jit, frozenset({0}))
    assert code.reason == "JIT code: no file"
    gone = read_function_code(site(tmp_path / "missing", 0, 16), frozenset())
    assert gone.reason.startswith("cannot open it")
    unreadable_kcore = CodeSite(CodeKind.KERNEL, (str(tmp_path / "kc"),), "[kernel]", 0, 16)
    annotation = annotate(
        ("vfs_read", "[kernel]", True),
        OffsetHistogram(unreadable_kcore, {3: 1.0}),
        read_function_code(unreadable_kcore, frozenset({3})),
    )
    assert "kcore is not readable" in annotation.reason and annotation.lines[0].text == "+0x3"


def test_a_symlink_cannot_lead_out_of_the_process_root(tmp_path: Path) -> None:
    from perftop.annotate.files import _open_in_root

    root = tmp_path / "root"
    (root / "usr").mkdir(parents=True)
    (root / "usr" / "real").write_text("inside")
    (root / "usr" / "escape").symlink_to("/etc/hostname")  # absolute: the host's, if followed
    (root / "usr" / "inside").symlink_to("/usr/real")  # absolute, within the root
    fd = _open_in_root(str(root), "/usr/inside", os.O_RDONLY)
    assert os.read(fd, 100) == b"inside"
    os.close(fd)
    with pytest.raises(FileNotFoundError):
        _open_in_root(str(root), "/usr/escape", os.O_RDONLY)
    with pytest.raises(RefusedFile):
        open_in_view(str(tmp_path / "root" / "usr" / "escape"), 1 << 20)  # O_NOFOLLOW
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(RefusedFile, match="larger than"):
        open_in_view(str(big), 1024)
    with pytest.raises(RefusedFile, match="not a regular file"):
        open_in_view("/dev/null", 1024)


def test_python_source_lines_are_read_literally(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(
        "import time\n"
        "def slow():\n"
        "    x = '\x1b[2J[bold]not markup[/bold]'\n"
        "    time.sleep(1)\n"
        "    return x\n"
        "\n"
        "slow()\n"
    )
    python = CodeSite(CodeKind.PYTHON, (str(script),), str(script), 2, 0)
    code = read_function_code(python, frozenset({4}))
    assert [number for (_, number), _ in code.source_text] == [2, 3, 4, 5]
    annotation = annotate(
        ("slow (child.py:2)", str(script), False),
        replace(OffsetHistogram(python, {4: 9.0, 3: 1.0})),
        code,
    )
    assert [line.offset for line in annotation.lines if line.hottest] == [4]
    escaped = next(line for line in annotation.lines if line.offset == 3)
    assert "\x1b" not in escaped.text and "\\x1b[2J[bold]not markup[/bold]" in escaped.text


def test_the_cache_reads_a_function_once(hot_binary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start, end = symbol_range(hot_binary, "hot")
    cache = CodeCache(max_functions=1)
    first = cache.code(site(hot_binary, start, end), frozenset())
    calls: list[object] = []
    monkeypatch.setattr(
        "perftop.annotate.cache.read_function_code", lambda *a: calls.append(a) or FunctionCode()
    )
    assert cache.code(site(hot_binary, start, end), frozenset({4})) is first
    assert calls == []
    cache.code(site(hot_binary, start, end - 1), frozenset())  # another function: evicts
    assert cache.cached(site(hot_binary, start, end), frozenset()) is None


def test_the_resolver_says_where_a_live_process_function_is(hot_binary: Path) -> None:
    process = subprocess.Popen([str(hot_binary)])
    try:
        start, end = symbol_range(hot_binary, "hot")
        resolver = NativeResolver(process.pid, ElfCache())
        maps = Path(f"/proc/{process.pid}/maps").read_text().splitlines()
        base = min(int(line.split("-")[0], 16) for line in maps if line.endswith(str(hot_binary)))
        # A PIE's first mapping is at file offset 0: its address is base + vaddr.
        resolution = resolver.resolve(base + start + 5)
        assert resolution.symbol == "hot" and resolution.function_offset == 5
        assert resolution.site is not None
        assert (resolution.site.start, resolution.site.end) == (start, end)
        assert resolution.site.display_path == str(hot_binary)
        assert resolution.site.paths[0].startswith(f"/proc/{process.pid}/map_files/")
    finally:
        process.kill()
        process.wait()


def test_instruction_jump_marks() -> None:
    code = FunctionCode(
        (
            Instruction(0, "mov %rdi,%rax"),
            Instruction(3, "jne 0 <f>", jump_to=0),
            Instruction(5, "call 1000 <g>", jumps_out=True),
        )
    )
    histogram = OffsetHistogram(CodeSite(CodeKind.NATIVE, (), "f", 0, 8), {0: 1.0})
    lines = annotate(("f", "f", False), histogram, code).lines
    assert [(line.jump, line.target) for line in lines] == [("", True), ("↑", False), ("→", False)]


@pytest.mark.skipif(shutil.which("objdump") is None, reason="binutils missing")
def test_objdump_missing_is_a_reason(hot_binary: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start, end = symbol_range(hot_binary, "hot")
    monkeypatch.setenv("PATH", "/nonexistent")
    code = read_function_code(site(hot_binary, start, end), frozenset())
    assert "objdump is not installed" in code.reason


def fake_kcore(path: Path, vaddr: int, code: bytes) -> None:
    """An ELF64 core with one PT_LOAD holding `code` at `vaddr`, laid out as /proc/kcore is."""
    import struct

    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<HHIQQQIHHHHHH", header, 16, 4, 62, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    program = struct.pack("<IIQQQQQQ", 1, 5, 64 + 56, vaddr, 0, len(code), len(code), 4096)
    path.write_bytes(bytes(header) + program + code)


def test_kernel_code_is_disassembled_from_kcore(tmp_path: Path) -> None:
    kcore = tmp_path / "kcore"
    start = 0xFFFFFFFF81000000
    # imul %rcx,%rax ; div %rdi ; ret
    fake_kcore(kcore, start, b"\x48\x0f\xaf\xc1\x48\xf7\xf7\xc3")
    kernel = CodeSite(CodeKind.KERNEL, (str(kcore),), "[kernel]", start, start + 8)
    code = read_function_code(kernel, frozenset({4}))
    assert [(i.offset, i.text.split()[0]) for i in code.instructions] == [
        (0, "imul"),
        (4, "div"),
        (7, "ret"),
    ]
    assert "kcore" in code.note
    lines = annotate(("f", "[kernel]", True), OffsetHistogram(kernel, {4: 1.0}), code).lines
    assert [line.offset for line in lines if line.hottest] == [4]
    outside = CodeSite(CodeKind.KERNEL, (str(kcore),), "[kernel]", start + 4096, start + 4100)
    assert "does not map" in read_function_code(outside, frozenset()).reason


def test_no_kcore_is_said_and_the_offsets_shown(tmp_path: Path) -> None:
    kernel = CodeSite(CodeKind.KERNEL, (str(tmp_path / "none"),), "[kernel]", 0, 16)
    code = read_function_code(kernel, frozenset({3}))
    assert code.reason.startswith("/proc/kcore is not readable")
    assert "no instructions" in code.reason


def test_batch_annotate_text_and_json(hot_binary: Path) -> None:
    import json

    from perftop.cli.annotate import BatchAnnotator, find_function

    start, end = symbol_range(hot_binary, "hot")
    histogram = OffsetHistogram(site(hot_binary, start, end), {0: 1.0, 4: 3.0})
    hot_interval = interval({(7, HOT): histogram, (7, ("hotter", "hot", False)): histogram})
    assert find_function(hot_interval, "hot") == HOT  # exact before prefix
    assert find_function(hot_interval, "hott") == ("hotter", "hot", False)
    assert find_function(hot_interval, "cold") is None
    text = BatchAnnotator("hot", json=False).interval(hot_interval)
    assert text.startswith("Annotate hot  [hot]  4 samples as the leaf")
    assert "75.00%" in text and "hot.c:" in text
    report = json.loads(BatchAnnotator("hot", json=True).interval(hot_interval))
    assert report["symbol"] == "hot" and report["module"] == "hot"
    assert sum(row["percent"] for row in report["instructions"]) == pytest.approx(100.0)
    empty = json.loads(BatchAnnotator("cold", json=True).interval(hot_interval))
    assert empty["instructions"] == [] and empty["reason"]
