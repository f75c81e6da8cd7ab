"""The README's first command, `bash scripts/start.sh`, end to end (issue 15, "Done when").

Run as a new user would, as a real process: it installs, makes an instance, posts the first
picture and serves. Nothing of the test harness leaks in (no HF_HUB_OFFLINE, no DREAMLOOM_*),
the instance lives in a temporary DIR on a free loopback port, and the model hub is either a
closed loopback port (no hub reachable) or the fake hub (tests/instance/cli/fake_hub.py)
serving the saved tiny pipeline under the id "auto" picks.

The install step runs with DREAMLOOM_INSTALL_DRY_RUN=1: the repository's .venv already has
everything, and a real `pip install -e .` would re-point the shared .venv and need a package
index; scripts/install.sh itself is tested in test_install_torch.py.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from generator import hub
from generator.tiny import ensure_tiny_pipeline
from tests.instance.cli.fake_hub import FakeHub

REPO = Path(__file__).resolve().parents[2]
START = REPO / "scripts" / "start.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def started(tmp_path: Path) -> Iterator:
    """Runs start.sh with a hub endpoint; yields (front page HTML, start.sh output, data dir)
    once the served instance answers; stops the server (SIGTERM) afterwards."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(endpoint: str) -> tuple[str, str, Path]:
        if not (REPO / ".venv" / "bin" / "dreamloom").exists():
            pytest.fail("no .venv in the repository: run scripts/install.sh (start.sh uses it)")
        port = _free_port()
        directory = tmp_path / "inst"
        log = tmp_path / "start.log"
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("DREAMLOOM_", "HF_", "PYTEST"))
        }
        env.update(
            DIR=str(directory),
            DOMAIN=f"127.0.0.1:{port}",
            HF_ENDPOINT=endpoint,
            HF_HOME=str(tmp_path / "hf-home"),
            DREAMLOOM_INSTALL_DRY_RUN="1",
        )
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", str(START)],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, f"start.sh ended ({proc.returncode}):\n{log.read_text()}"
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                if page.status_code == 200:
                    return page.text, log.read_text(), directory
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # start.sh execs serve: this is the server
            proc.wait(timeout=60)


def _posted_images(page: str) -> list[str]:
    return re.findall(r'<img src="(http://127\.0\.0\.1:\d+/media/[0-9a-z]+\.png)"', page)


def _recipe_models(directory: Path) -> list[str]:
    db = sqlite3.connect(directory / "data" / "dreamloom.db")
    try:
        rows = db.execute("SELECT recipe FROM posts WHERE local = 1").fetchall()
    finally:
        db.close()
    return [re.search(r'"model": "([^"]+)"', r[0]).group(1) for r in rows if r[0]]


def test_no_hub_reachable_still_serves_one_posted_image_and_says_why(started) -> None:
    """With no model hub reachable, start.sh still ends serving an instance whose front page
    shows the one posted picture and the line saying the real model could not be fetched."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    page, output, directory = started(closed)
    images = _posted_images(page)
    assert len(set(images)) == 1, page
    assert httpx.get(images[0], timeout=5).headers["content-type"] == "image/png"
    assert "The real image model could not be fetched" in page
    assert f"the model {hub.auto_model()} could not be fetched" in output
    assert "Dreamloom is starting on http://127.0.0.1:" in output and "@painter@" in output
    assert _recipe_models(directory) == ["builtin:tiny"]


def test_with_the_hub_it_downloads_the_model_and_posts_a_picture_from_it(
    started, tmp_path_factory
) -> None:
    """With the fake hub reachable, start.sh downloads the default model (a progress bar,
    then "ready"), posts a picture made by that model, and shows no test-model banner."""
    pipeline = ensure_tiny_pipeline(tmp_path_factory.mktemp("built"))
    repos = {hub.AUTO_CPU: pipeline, hub.AUTO_GPU: pipeline}
    with FakeHub(repos) as fake:
        page, output, directory = started(fake.url)
        assert any(r.path.endswith("model_index.json") for r in fake.file_gets())
    repo = hub.auto_model()
    assert f"fetching {repo}" in output and f"model {repo} ready" in output, output
    bar = next(line for line in output.splitlines() if f"fetching {repo}" in line)
    assert re.search(r"\d+(\.\d+)?/\d+(\.\d+)? [kMG]?B", bar), bar  # the bar's bytes column
    assert len(set(_posted_images(page))) == 1, page
    assert "could not be fetched" not in page and "builtin:tiny" not in page
    assert _recipe_models(directory) == [repo]
