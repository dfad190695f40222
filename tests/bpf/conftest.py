from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CHAIN_COMM = "perftop_chain"


@pytest.fixture(scope="session")
def chain_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("chain") / CHAIN_COMM
    subprocess.run(
        ["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(binary), str(HERE / "chain.c")],
        check=True,
    )
    return binary


@pytest.fixture
def busy_chain(chain_binary: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([str(chain_binary), "60"])
    time.sleep(0.1)
    yield process
    process.kill()
    process.wait()
