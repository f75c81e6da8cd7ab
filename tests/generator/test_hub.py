"""generator/hub.py against a fake model hub on loopback serving a saved tiny pipeline."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from generator import hub
from generator.errors import HubUnreachableError, ModelLoadError
from generator.locating import files_on_disk, locate
from generator.tiny import ensure_tiny_pipeline
from tests.instance.cli.fake_hub import FakeHub

REPO = "test/tiny"
UNET = "unet/diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline as a hub repository, plus files a pipeline does not need: a .bin
    copy of the UNet, a single-file checkpoint at the root and a README."""
    built = ensure_tiny_pipeline(tmp_path_factory.mktemp("built"))
    repo = tmp_path_factory.mktemp("repo") / "tiny"
    shutil.copytree(built, repo)
    (repo / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"x" * 1000)
    (repo / "whole_checkpoint.safetensors").write_bytes(b"y" * 1000)
    (repo / "README.md").write_text("a tiny model\n")
    return repo


@pytest.fixture
def fake_hub(repo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub({REPO: repo_dir}) as h:
        yield h


def test_fetch_downloads_only_pipeline_files_with_progress(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path
) -> None:
    """A fetch stores model_index.json plus each component's configs and safetensors, reports
    progress up to the total, writes the complete marker, and the result loads by hub id."""
    calls: list[tuple[int, int]] = []
    result = hub.fetch(
        REPO, tmp_path, endpoint=fake_hub.url, progress=lambda d, t: calls.append((d, t))
    )
    assert not result.reused
    assert result.path == hub.model_dir(REPO, tmp_path)
    assert (result.path / UNET).read_bytes() == (repo_dir / UNET).read_bytes()
    assert not (result.path / "unet" / "diffusion_pytorch_model.bin").exists()
    assert not (result.path / "whole_checkpoint.safetensors").exists()
    assert not (result.path / "README.md").exists()
    assert (result.path / "tokenizer" / "tokenizer.json").is_file()
    assert not list(result.path.rglob("*.part"))
    assert hub.cached_dir(REPO, tmp_path) == result.path
    stored = [p for p in result.path.rglob("*") if p.is_file()]
    wanted = sum(p.stat().st_size for p in stored if p.name != hub.COMPLETE_MARKER)
    assert result.downloaded_bytes == wanted
    assert calls[-1] == (wanted, wanted)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    # the rest of the generator finds the fetched copy by its hub id
    _source, local, published = locate(REPO, tmp_path, None)
    assert (local, published) == (result.path, REPO)
    assert files_on_disk(REPO, tmp_path) == result.path


def test_fetched_model_loads_and_generates(fake_hub: FakeHub, tmp_path: Path) -> None:
    """The fetched directory is a pipeline diffusers loads; its recipe names the hub id."""
    from generator.loading import load_pipeline

    hub.fetch(REPO, tmp_path, endpoint=fake_hub.url)
    pipe = load_pipeline(REPO, cache_dir=tmp_path, device="cpu")
    assert pipe.model_id == REPO
    assert pipe.weights_hash.startswith("sha256:")


def test_second_fetch_sends_no_request(fake_hub: FakeHub, tmp_path: Path) -> None:
    """A model fetched once is reused: the second fetch does not touch the network."""
    hub.fetch(REPO, tmp_path, endpoint=fake_hub.url)
    before = len(fake_hub.requests)
    again = hub.fetch(REPO, tmp_path, endpoint=fake_hub.url)
    assert again.reused and again.downloaded_bytes == 0
    assert len(fake_hub.requests) == before
    assert UNET in again.files


def test_broken_download_resumes_from_partial_file(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path
) -> None:
    """A connection dropped mid-file is retried with a Range from the bytes on disk; no byte
    is fetched twice and the file is whole."""
    size = (repo_dir / UNET).stat().st_size
    fake_hub.break_once[UNET] = 30_000
    result = hub.fetch(REPO, tmp_path, endpoint=fake_hub.url)
    gets = [r for r in fake_hub.file_gets() if r.path.endswith(UNET)]
    assert [g.range for g in gets] == [None, "bytes=30000-"]
    assert (result.path / UNET).read_bytes() == (repo_dir / UNET).read_bytes()
    total = sum(result.files.values())
    assert result.downloaded_bytes == total  # the broken part was not fetched again
    assert size > 30_000


def test_broken_download_resumes_in_the_next_fetch(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path
) -> None:
    """Without retries, a dropped connection fails the fetch clearly and leaves the partial
    file and no complete marker; the next fetch continues from it."""
    fake_hub.break_once[UNET] = 40_000
    with pytest.raises(HubUnreachableError, match="cannot be reached"):
        hub.fetch(REPO, tmp_path, endpoint=fake_hub.url, retries=0)
    part = hub.model_dir(REPO, tmp_path) / (UNET + ".part")
    assert part.stat().st_size == 40_000
    assert hub.cached_dir(REPO, tmp_path) is None
    result = hub.fetch(REPO, tmp_path, endpoint=fake_hub.url)
    gets = [r for r in fake_hub.file_gets() if r.path.endswith(UNET)]
    assert gets[-1].range == "bytes=40000-"
    assert (result.path / UNET).read_bytes() == (repo_dir / UNET).read_bytes()
    assert not part.exists()


def test_fp16_variant_taken_on_gpu_under_the_plain_name(
    repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With fp16 the component's .fp16.safetensors is fetched and stored as the plain name;
    without it the plain weights are fetched."""
    variant_repo = tmp_path / "repo"
    shutil.copytree(repo_dir, variant_repo)
    (variant_repo / "unet" / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"half")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub({REPO: variant_repo}) as h:
        half = hub.fetch(REPO, tmp_path / "gpu", endpoint=h.url, fp16=True)
        full = hub.fetch(REPO, tmp_path / "cpu", endpoint=h.url, fp16=False)
    assert (half.path / UNET).read_bytes() == b"half"
    assert (full.path / UNET).read_bytes() == (repo_dir / UNET).read_bytes()
    assert not (half.path / "unet" / "diffusion_pytorch_model.fp16.safetensors").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_hub_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hub listening: HubUnreachableError naming the endpoint; nothing counts as fetched."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(HubUnreachableError) as info:
        hub.fetch(REPO, tmp_path, endpoint=url)
    assert f"the model hub at {url} cannot be reached" in str(info.value)
    assert hub.cached_dir(REPO, tmp_path) is None


def test_offline_setting_refuses_before_any_request(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HF_HUB_OFFLINE=1 fails the fetch at once, without a request."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE"):
        hub.fetch(REPO, tmp_path, endpoint=fake_hub.url)
    assert fake_hub.requests == []


def test_missing_model_is_not_an_offline_error(fake_hub: FakeHub, tmp_path: Path) -> None:
    """A hub that answers 404 for the id: ModelLoadError saying so, not 'unreachable'."""
    with pytest.raises(ModelLoadError, match="has no model 'nobody/nothing'") as info:
        hub.fetch("nobody/nothing", tmp_path, endpoint=fake_hub.url)
    assert not isinstance(info.value, HubUnreachableError)


def test_endpoint_setting_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """[generator] hub_endpoint wins over HF_ENDPOINT, which wins over the library default."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert hub.hub_endpoint("http://127.0.0.2:8/") == "http://127.0.0.2:8"
    assert hub.hub_endpoint("") == "http://127.0.0.1:9"
    monkeypatch.delenv("HF_ENDPOINT")
    assert hub.hub_endpoint("") == constants.ENDPOINT.rstrip("/")


def test_auto_picks_by_device() -> None:
    """auto: SD-Turbo on CUDA, SDXS on the CPU; both have a stated licence."""
    assert hub.auto_model("cpu") == hub.AUTO_CPU
    assert hub.auto_model("cuda") == hub.AUTO_GPU
    assert set(hub.LICENCES) == {hub.AUTO_CPU, hub.AUTO_GPU}


def test_auto_runs_builtin_tiny_until_fetched(tmp_path: Path) -> None:
    """model = "auto" with nothing fetched locates builtin:tiny (the honest fallback)."""
    _source, _local, published = locate("auto", tmp_path, None)
    assert published == "builtin:tiny"


def test_auto_runs_whichever_auto_model_was_fetched(
    fake_hub: FakeHub, repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fetched auto model runs even when the detected hardware would pick the other one
    (device = "cpu" on a GPU machine fetches the CPU model)."""
    other = hub.AUTO_GPU if hub.auto_model() == hub.AUTO_CPU else hub.AUTO_CPU
    with FakeHub({other: repo_dir}) as h:
        hub.fetch(other, tmp_path, endpoint=h.url)
    _source, local, published = locate("auto", tmp_path, None)
    assert (published, local) == (other, hub.model_dir(other, tmp_path))


def test_component_with_only_pickled_weights_is_refused() -> None:
    """A component whose weights exist only as .bin is refused with the reason (safetensors
    only); components without weights (scheduler, tokenizer) need none."""
    index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "safety_checker": [None, None],
    }
    files = [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "scheduler/scheduler_config.json",
    ]
    with pytest.raises(ModelLoadError, match=r"unet has no \.safetensors weights"):
        hub.select_files(index, files, fp16=False)
    files[2] = "unet/diffusion_pytorch_model.safetensors"
    assert hub.select_files(index, files, fp16=False) == {f: f for f in files[1:]}


@pytest.mark.parametrize("component", ["..", "", ".", "~/x", "unet/.."])
def test_a_hostile_listing_cannot_name_files_outside_the_model_dir(component: str) -> None:
    """A hub whose model_index.json names a component such as `..` or `` (and lists
    `../evil.safetensors` or `/evil.json` for it) is refused: no local path of the plan
    may leave the model directory, so nothing is written outside it."""
    index = {"_class_name": "X", component: ["diffusers", "UNet2DConditionModel"]}
    listing = [
        "model_index.json",
        f"{component}/config.json",
        f"{component}/weights.safetensors",
        "../evil.safetensors",
        "/evil.json",
    ]
    with pytest.raises(ModelLoadError, match="not a plain folder name"):
        hub.select_files(index, listing, fp16=False)


def test_a_hub_that_sends_more_than_its_listing_says_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub whose listing gives a file's size and then streams more bytes than that (a
    hostile or broken hub filling the disk) is refused once the listed size is passed: a
    ModelLoadError, and neither the file nor its part file is left behind."""
    import json as json_mod
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    listing = {"sha": "abc", "siblings": [{"rfilename": "model_index.json", "size": 10}]}
    sent: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            if self.path.startswith("/api/"):
                body = json_mod.dumps(listing).encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.end_headers()  # no Content-Length: streamed until the connection closes
            try:
                for _ in range(64):
                    self.wfile.write(b"x" * 16384)
                    sent.append(16384)
            except OSError:
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ModelLoadError, match="sent more than the 10 bytes"):
            hub.fetch(REPO, tmp_path, endpoint=url, retries=0)
    finally:
        server.shutdown()
        server.server_close()
    target = hub.model_dir(REPO, tmp_path)
    assert not (target / "model_index.json").exists()
    assert not (target / "model_index.json.part").exists()


def test_a_redirect_off_the_hub_to_a_private_address_is_refused() -> None:
    """The configured hub's own host may be private (a LAN mirror, this test's loopback
    hub), but a redirect from it to another host must lead to public addresses only: a
    hostile mirror cannot point a download at the metadata service or an internal host.
    The refusal comes before the second request is sent."""
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://localhost:9/secret"})

    guard = hub.redirect_guard("http://127.0.0.1:8765")
    with httpx.Client(transport=httpx.MockTransport(answer), follow_redirects=True,
                      event_hooks={"request": [guard]}) as http:  # fmt: skip
        with pytest.raises(ModelLoadError, match="not a public address"):
            http.get("http://127.0.0.1:8765/o/n/resolve/main/model_index.json")
        with pytest.raises(ModelLoadError, match="file: URL"):
            guard(httpx.Request("GET", "file:///etc/passwd"))
    assert sent == ["http://127.0.0.1:8765/o/n/resolve/main/model_index.json"]
