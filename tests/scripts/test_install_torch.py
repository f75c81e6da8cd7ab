"""scripts/install.sh picks torch by machine (issue 15): an NVIDIA GPU (nvidia-smi runs) gets
the default, CUDA, build; a CPU-only machine the CPU build from PyTorch's CPU wheel index when
it answers within 5 s, else the default index; always torch==2.13.0.

The script runs for real in a copy of the repository layout whose .venv has no torch, with
DREAMLOOM_INSTALL_DRY_RUN=1 so it prints its pip commands instead of running them; the
"GPU" is an nvidia-smi on PATH, the CPU index a server on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = "torch==2.13.0"


def _python_without_torch() -> str:
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        probe = subprocess.run([candidate, "-c", "import torch"], capture_output=True)
        if Path(candidate).exists() and probe.returncode != 0:
            return candidate
    pytest.skip("no Python without torch on this machine to stand in for a fresh .venv")


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "install.sh", repo / "scripts" / "install.sh")
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(_python_without_torch())
    return repo


def _install(layout: Path, *, gpu: bool | None, index: str) -> tuple[list[str], str, float]:
    """Run install.sh; `gpu`: True an nvidia-smi that works, False one that fails (a driver
    without a GPU), None none. Its torch pip command, its stderr, and seconds taken."""
    fake_bin = layout / "fake-bin"
    fake_bin.mkdir(exist_ok=True)
    if gpu is not None:
        smi = fake_bin / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\nexit {0 if gpu else 9}\n")
        smi.chmod(0o755)
    path = ":".join(p for p in os.environ["PATH"].split(":")
                    if not (Path(p) / "nvidia-smi").exists())  # fmt: skip
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOM_")},
        "PATH": f"{fake_bin}:{path}",
        "DREAMLOOM_INSTALL_DRY_RUN": "1",
        "DREAMLOOM_TORCH_CPU_INDEX": index,
    }
    began = time.monotonic()
    r = subprocess.run(["bash", str(layout / "scripts" / "install.sh")], env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    took = time.monotonic() - began
    assert r.returncode == 0, r.stderr
    (torch_line,) = [line for line in r.stdout.splitlines() if "torch" in line]
    return torch_line.split(), r.stderr, took


class _Index(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'<a href="torch-2.13.0+cpu-cp311-none-linux_x86_64.whl">torch</a>'
        self.send_response(200 if self.path.rstrip("/").endswith("/torch") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def cpu_index() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/whl/cpu"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_index() -> Iterator[str]:
    """An index that takes the connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/whl/cpu"
    finally:
        listener.close()


def test_a_gpu_machine_gets_the_default_cuda_build(layout: Path, cpu_index: str) -> None:
    """nvidia-smi works: the pinned torch from the default index, even with the CPU index up."""
    cmd, stderr, _ = _install(layout, gpu=True, index=cpu_index)
    assert cmd[-1] == PIN and "--index-url" not in cmd
    assert "NVIDIA GPU" in stderr and "CUDA" in stderr


def test_a_cpu_machine_gets_the_cpu_index_when_it_answers(layout: Path, cpu_index: str) -> None:
    """No GPU (no nvidia-smi, or one that fails): the pinned torch from the CPU index."""
    for gpu in (None, False):
        cmd, stderr, _ = _install(layout, gpu=gpu, index=cpu_index)
        assert cmd[-1] == PIN
        assert cmd[cmd.index("--index-url") + 1] == cpu_index, cmd
        assert "CPU build" in stderr


def test_a_cpu_machine_falls_back_to_the_default_index(layout: Path, silent_index: str) -> None:
    """The CPU index does not answer: after at most about 5 s, the default index."""
    cmd, stderr, took = _install(layout, gpu=None, index=silent_index)
    assert cmd[-1] == PIN and "--index-url" not in cmd
    assert "did not answer" in stderr
    assert took < 15


def test_this_machine_keeps_its_local_cpu_wheel() -> None:
    """The pin is the version installed here (the local CPU wheel it must keep resolving to)."""
    import torch

    assert torch.__version__.split("+")[0] == PIN.split("==")[1]
