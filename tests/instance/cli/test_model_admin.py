"""`dreamloom model info|fetch|warmup` and the first-start fetch of `init`, against a fake model
hub on loopback (tests/instance/cli/fake_hub.py) serving the saved tiny pipeline.

These commands read files and settings only (no database), so they run on SQLite."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator import hub
from generator.tiny import ensure_tiny_pipeline
from instance.cli import app
from instance.runtime import Runtime
from tests.instance.cli.conftest import CliInstance
from tests.instance.cli.fake_hub import FakeHub
from tests.instance_fixtures import asgi_client, free_port

REPO = "test/tiny"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = ensure_tiny_pipeline(tmp_path_factory.mktemp("built"))
    repo = tmp_path_factory.mktemp("repo") / "tiny"
    shutil.copytree(built, repo)
    return repo


@pytest.fixture
def fake_hub(tiny_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The hub serves the tiny pipeline as test/tiny and as both models "auto" can pick."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    repos = {REPO: tiny_repo, hub.AUTO_CPU: tiny_repo, hub.AUTO_GPU: tiny_repo}
    with FakeHub(repos) as h:
        yield h


def use_model(inst: CliInstance, model: str, endpoint: str) -> None:
    config = inst.directory / "config.toml"
    text = config.read_text().replace(
        'model = "builtin:tiny"', f'model = "{model}"\nhub_endpoint = "{endpoint}"'
    )
    config.write_text(text)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_info_on_builtin_tiny(sqlite_instance: CliInstance) -> None:
    """info names the model, where it is cached, the device/dtype and the weights hash."""
    data = sqlite_instance.json("model", "info")
    assert data["configured"] == data["runs"] == "builtin:tiny"
    assert data["device"] == "cpu" and data["dtype"] == "float32"
    assert data["compile"]["enabled"] is False
    text = sqlite_instance.ok("model", "info").stdout
    assert "model: builtin:tiny" in text and "device: cpu float32" in text


def test_fetch_then_info_then_reuse(sqlite_instance: CliInstance, fake_hub: FakeHub) -> None:
    """Before a fetch info says not cached; fetch downloads with a progress bar; after it
    info shows the cache, its size and the weights hash; a second fetch sends nothing."""
    use_model(sqlite_instance, REPO, fake_hub.url)
    before = sqlite_instance.json("model", "info")
    assert before["resolved"] == REPO and not before["cached"] and not before["fetched"]
    assert before["weights_hash"] == "" and before["hub_endpoint"] == fake_hub.url

    r = sqlite_instance.ok("model", "fetch")
    assert "fetching test/tiny" in r.output  # the progress bar's label
    assert "test/tiny: fetched" in r.stdout
    assert fake_hub.file_gets()

    after = sqlite_instance.json("model", "info")
    assert after["cached"] and after["fetched"] and after["runs"] == REPO
    assert after["cache_bytes"] > 100_000 and after["weights_hash"].startswith("sha256:")
    assert Path(after["cache_path"]) == hub.model_dir(REPO, sqlite_instance.settings().cache_path)

    sent = len(fake_hub.requests)
    again = sqlite_instance.json("model", "fetch")
    assert again["reused"] is True and again["downloaded_bytes"] == 0
    assert len(fake_hub.requests) == sent


def test_fetch_with_unreachable_hub_is_one_error_line(
    sqlite_instance: CliInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hub listening: exit 1 and one `error:` line naming the hub, no traceback."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    url = closed_port_url()
    use_model(sqlite_instance, REPO, url)
    r = sqlite_instance.dl("model", "fetch")
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"the model hub at {url} cannot be reached" in r.output.replace("\n", " ")


def test_fetch_refuses_what_is_not_a_hub_model(sqlite_instance: CliInstance) -> None:
    """builtin:tiny has nothing to fetch: one error line, exit 1."""
    r = sqlite_instance.dl("model", "fetch", "builtin:tiny")
    assert r.exit_code == 1 and r.output.startswith("error: ")


def test_warmup_on_builtin_tiny(sqlite_instance: CliInstance) -> None:
    """warmup loads the model and makes one image at its native size, timing both."""
    data = sqlite_instance.json("model", "warmup")
    assert data["model"] == "builtin:tiny" and data["device"] == "cpu"
    assert (data["width"], data["height"], data["steps"]) == (64, 64, 1)
    assert data["load_s"] > 0 and data["generate_s"] > 0
    assert "one 64x64 image" in sqlite_instance.ok("model", "warmup").stdout


def init(directory: Path, *extra: str) -> str:
    domain = f"127.0.0.1:{free_port()}"
    args = ["init", "--domain", domain, "--scheme", "http", "--dir", str(directory), *extra]
    r = runner.invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_init_writes_auto_and_falls_back_offline(tmp_path: Path) -> None:
    """A new config says model = "auto"; with the hub unreachable (HF_HUB_OFFLINE) init says so
    in one line, states the licence, and the instance runs builtin:tiny with a banner that says
    the real model could not be fetched and how to fetch it."""
    directory = tmp_path / "inst"
    output = init(directory)
    assert 'model = "auto"' in (directory / "config.toml").read_text()
    repo = hub.auto_model()
    assert f"licence: {hub.LICENCES[repo]}" in output.replace("\n", " ")
    warning = [line for line in output.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and f"the model {repo} could not be fetched" in warning[0]
    inst = CliInstance(directory, "", "sqlite")
    info = inst.json("model", "info")
    assert info["configured"] == "auto" and info["resolved"] == repo
    assert info["runs"] == "builtin:tiny" and not info["fetched"]

    async def front(rt: Runtime) -> str:
        async with asgi_client(rt) as c:
            return (await c.get("/", headers={"Accept": "text/html"})).text

    page = inst.db(front)
    assert "could not be fetched" in page and "dreamloom model fetch" in page


def test_init_fetches_auto_model_once_with_progress(
    tmp_path: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a reachable hub (HF_ENDPOINT), init downloads the auto model with a progress bar;
    it then runs (recipes name the hub id), the banner is gone, and init again fetches
    nothing."""
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    directory = tmp_path / "inst"
    output = init(directory)
    repo = hub.auto_model()
    assert f"fetching {repo}" in output and f"model {repo} ready" in output
    inst = CliInstance(directory, "", "sqlite")
    assert inst.json("model", "info")["runs"] == repo
    assert inst.json("model", "warmup")["model"] == repo

    async def front(rt: Runtime) -> str:
        async with asgi_client(rt) as c:
            return (await c.get("/", headers={"Accept": "text/html"})).text

    page = inst.db(front)
    assert "builtin:tiny" not in page

    sent = len(fake_hub.requests)
    init(directory)
    assert len(fake_hub.requests) == sent


def test_explicit_tiny_model_option(tmp_path: Path) -> None:
    """init --model builtin:tiny writes it and fetches nothing."""
    directory = tmp_path / "inst"
    output = init(directory, "--model", "builtin:tiny")
    assert 'model = "builtin:tiny"' in (directory / "config.toml").read_text()
    assert "could not be fetched" not in output and "licence:" not in output


def test_serve_fetches_the_model_at_first_start(
    tmp_path: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dreamloom serve` on a new "auto" config downloads the model before it answers, says
    so in its log, and the front page then shows no test-model banner."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from instance.setup import write_config

    port = free_port()
    directory = tmp_path / "inst"
    write_config(directory, f"127.0.0.1:{port}", "http", allow_private_addresses=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DREAMLOOM_", "HF_HUB_OFF"))}
    env["HF_ENDPOINT"] = fake_hub.url
    log = directory / "serve.log"
    dreamloom = Path(sys.executable).with_name("dreamloom")
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(dreamloom), "serve", "--dir", str(directory), "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    repo = hub.auto_model()
    text = log.read_text()
    assert f"model {repo} ready" in text and f"licence: {hub.LICENCES[repo]}" in text, text
    assert any(r.path.endswith("model_index.json") for r in fake_hub.file_gets())
    assert "builtin:tiny" not in page and "could not be fetched" not in page
