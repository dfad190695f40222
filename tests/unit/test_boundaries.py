"""The layers' import rules, read from the source: every import statement of every module,
function-level and TYPE_CHECKING ones included (a lazy import still ties two layers)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "perftop"


@dataclass(frozen=True, slots=True)
class Rule:
    """Modules under `inside`, but not under `unless`, must not import `forbidden`, except
    what is under `allowed`."""

    why: str
    forbidden: tuple[str, ...]
    inside: str = "perftop"
    unless: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()

    def applies_to(self, module: str) -> bool:
        return _under(module, self.inside) and not any(_under(module, u) for u in self.unless)

    def refuses(self, name: str) -> bool:
        return any(_under(name, f) for f in self.forbidden) and not any(
            _under(name, a) for a in self.allowed
        )


RULES = (
    Rule("only the UI draws: Textual", ("textual",), unless=("perftop.ui",)),
    Rule("only the UI styles text: Rich", ("rich",), unless=("perftop.ui",)),
    Rule("only the sampler talks to BCC", ("bcc",), unless=("perftop.sampling.bcc",)),
    Rule("formats are bytes in and out", ("perftop.sampling", "perftop.ui"), "perftop.formats"),
    Rule(
        "the model is the bottom layer", ("perftop",), "perftop.model", allowed=("perftop.model",)
    ),
    Rule("the viewmodel is tested without a screen", ("perftop.ui",), "perftop.viewmodel"),
    Rule("the screen asks the sampling layer about the machine", ("perftop.system",), "perftop.ui"),
)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, module) for every module `source` imports, as absolute dotted names (`from a
    import b` yields a.b too, since b may be a module)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            yield node.lineno, origin
            yield from ((node.lineno, f"{origin}.{alias.name}") for alias in node.names)


def violations(module: str, imported: Iterator[tuple[int, str]]) -> list[str]:
    """One line per import statement and rule it breaks."""
    found: dict[tuple[int, Rule], str] = {}
    for line, name in imported:
        for rule in RULES:
            if rule.applies_to(module) and rule.refuses(name):
                found.setdefault((line, rule), f"{module} imports {name} (line {line}): {rule.why}")
    return list(found.values())


def check_tree(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        names = imports(path.read_text(), module, path.name == "__init__.py")
        found.extend(violations(module, names))
    return found


def test_perftop_keeps_its_layers() -> None:
    assert check_tree(PACKAGE) == []


def test_every_module_is_read() -> None:
    modules = {module_name(path, PACKAGE) for path in PACKAGE.rglob("*.py")}
    assert {"perftop.ui.app", "perftop.model.samples", "perftop.sampling.bcc.source"} <= modules


# The checker itself: it must be able to fail ------------------------------------------------


def write(root: Path, relative: str, source: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


@pytest.mark.parametrize(
    ("relative", "source", "broken"),
    [
        ("model/bad.py", "def f():\n    from perftop.sampling import source\n", "the model"),
        ("model/bad.py", "from ..formats import registry\n", "the model"),
        (
            "viewmodel/bad.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import textual.app\n",
            "Textual",
        ),
        ("viewmodel/bad.py", "from perftop.ui.widgets import dashboard\n", "without a screen"),
        ("formats/bad.py", "from perftop.sampling.source import SourceError\n", "bytes in and out"),
        ("profile/bad.py", "from rich.text import Text\n", "Rich"),
        ("symbols/bad.py", "import bcc\n", "BCC"),
        ("cli/bad.py", "from bcc.libbcc import lib\n", "BCC"),
    ],
)
def test_the_checker_catches_a_module_that_crosses_a_line(
    tmp_path: Path, relative: str, source: str, broken: str
) -> None:
    root = tmp_path / "perftop"
    write(root, "__init__.py", "")
    write(root, relative, source)
    (found,) = check_tree(root)
    assert (
        found.startswith(f"perftop.{relative[:-3].replace('/', '.')} imports") and broken in found
    )


def test_the_checker_lets_each_layer_use_what_it_may(tmp_path: Path) -> None:
    root = tmp_path / "perftop"
    write(
        root,
        "ui/app.py",
        "import textual\nfrom rich.text import Text\nfrom perftop.model import samples\n",
    )
    write(root, "sampling/bcc/source.py", "def f():\n    from bcc import BPF\n")
    write(
        root, "model/stats.py", "from perftop.model.samples import Frame\nfrom . import samples\n"
    )
    write(root, "formats/text.py", "from perftop.model.samples import Frame\n")
    assert check_tree(root) == []
