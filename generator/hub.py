"""Download a diffusers model from the model hub into Dreamloom's cache: once, resumable, with
progress, only the files a pipeline loads.

Rules this module owns:

- **Where:** a hub id ``owner/name`` lives in ``<cache_dir>/hub/owner--name`` as a plain
  diffusers directory; it counts as fetched only once ``.dreamloom-complete.json`` is written,
  after every file arrived whole. :func:`cached_dir` answers "is it fetched?" without any
  network; :func:`fetch` on a fetched model sends no request at all.
- **What:** ``model_index.json`` and, for each component it names, the component's configs
  (``*.json``, ``*.txt``, ``*.model``) and its ``*.safetensors`` weights, never ``.bin``,
  ``.ckpt``, ONNX or single-file checkpoints at the repository root. With ``fp16=True`` (a GPU)
  a ``*.fp16.safetensors`` variant is taken where the component has one, and stored under the
  plain name, so the directory loads without ``variant=``.
- **Resumable:** a file arrives as ``<name>.part``; a broken transfer is retried from the bytes
  already on disk (``Range: bytes=N-`` with ``If-Range`` on the file's ETag, so a changed file
  starts over), within one :func:`fetch` (``retries``) and across calls.
- **Which hub:** :func:`hub_endpoint`: the ``[generator] hub_endpoint`` setting, else the
  ``HF_ENDPOINT`` environment variable, else huggingface_hub's default endpoint. The hub API
  used is the public one: ``GET /api/models/{id}/revision/{rev}?blobs=true`` (the commit and the
  file list with sizes) and ``GET /{id}/resolve/{commit}/{path}`` (a file; redirects followed).
- **Unreachable:** no connection, a timeout or ``HF_HUB_OFFLINE`` raise
  :class:`~generator.errors.HubUnreachableError` with one clear sentence; a missing model or a
  refused download raise :class:`~generator.errors.ModelLoadError`.
- **"auto":** :func:`auto_model` picks the default model for the hardware (:data:`AUTO_GPU`
  with CUDA, :data:`AUTO_CPU` otherwise); :data:`LICENCES` says what their licences are.

Plain HTTP (httpx) rather than ``huggingface_hub.snapshot_download``: the latter reports
progress only through tqdm classes, lists files through the tree API and keeps its own
blob/symlink cache layout; here one listing, a byte-level progress callback and a directory
diffusers loads directly are all we need.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from generator.errors import HubUnreachableError, ModelLoadError

AUTO = "auto"
AUTO_GPU = "stabilityai/sd-turbo"
AUTO_CPU = "IDKiro/sdxs-512-0.9"
LICENCES = {
    AUTO_GPU: "Stability AI Community License (non-commercial use free; commercial use "
    "needs a Stability AI membership above USD 1M revenue) - see the model card",
    AUTO_CPU: "listed as Apache-2.0 (not checked against its model card here) - read the "
    "model card before commercial use",
}
"""The licence of each model ``auto`` can pick, as far as we could check it."""

COMPLETE_MARKER = ".dreamloom-complete.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CONFIG_SUFFIXES = (".json", ".txt", ".model")
_PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth")
_VARIANT = re.compile(r"^(?P<stem>.+)\.fp16\.safetensors$")
# a component is one folder of the model directory: a plain name, never "", "." or ".."
_COMPONENT = re.compile(r"^[A-Za-z0-9][\w.-]*$")

Progress = Callable[[int, int], None]
"""``progress(done_bytes, total_bytes)``; total is 0 while unknown."""


@dataclass
class FetchResult:
    """What :func:`fetch` did: where the model is and how many bytes came over the network."""

    repo_id: str
    path: Path
    reused: bool
    downloaded_bytes: int = 0
    files: dict[str, int] = field(default_factory=dict)  # local path -> size


def is_hub_id(model: str) -> bool:
    return bool(_HUB_ID.match(model)) and not model.startswith((".", "/", "~"))


@functools.lru_cache(maxsize=4)
def auto_model(device: str | None = None) -> str:
    """The model ``model = "auto"`` stands for: :data:`AUTO_GPU` when the (configured or
    detected) device is CUDA, :data:`AUTO_CPU` otherwise (a real picture in seconds on a CPU)."""
    from generator.devices import resolve_device

    if device and device.startswith("cuda"):
        return AUTO_GPU
    try:
        dev = resolve_device(device)
    except Exception:  # a bad device setting is reported where the pipeline loads
        dev = "cpu"
    return AUTO_GPU if dev.startswith("cuda") else AUTO_CPU


def hub_endpoint(setting: str = "") -> str:
    """``[generator] hub_endpoint``, else ``HF_ENDPOINT``, else huggingface_hub's default."""
    if setting.strip():
        return setting.strip().rstrip("/")
    env = os.environ.get("HF_ENDPOINT", "").strip()
    if env:
        return env.rstrip("/")
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def model_dir(repo_id: str, cache_dir: Path) -> Path:
    """Where ``repo_id`` is (or would be) stored under ``cache_dir``."""
    return Path(cache_dir) / "hub" / repo_id.replace("/", "--")


def cached_dir(repo_id: str, cache_dir: Path) -> Path | None:
    """The fetched model's directory when its download completed, else None (no network)."""
    if not is_hub_id(repo_id):
        return None
    directory = model_dir(repo_id, cache_dir)
    return directory if (directory / COMPLETE_MARKER).is_file() else None


def cache_info(repo_id: str, cache_dir: Path) -> dict[str, Any]:
    """What the complete marker recorded (commit, files, endpoint), or {} when not fetched."""
    directory = cached_dir(repo_id, cache_dir)
    if directory is None:
        return {}
    try:
        data = json.loads((directory / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _unreachable(endpoint: str, exc: BaseException | str) -> HubUnreachableError:
    why = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return HubUnreachableError(
        f"the model hub at {endpoint} cannot be reached ({why}); set [generator] hub_endpoint "
        "or HF_ENDPOINT to a reachable hub, or run `dreamloom model fetch` later"
    )


def fetch(
    repo_id: str,
    cache_dir: Path,
    *,
    endpoint: str = "",
    fp16: bool = False,
    revision: str = "main",
    progress: Progress | None = None,
    retries: int = 3,
    timeout_s: float = 30.0,
    client: httpx.Client | None = None,
) -> FetchResult:
    """Download ``repo_id`` into :func:`model_dir` once (see the module docstring)."""
    if not is_hub_id(repo_id):
        raise ModelLoadError(f"{repo_id!r} is not a hub id (owner/name)")
    done = cached_dir(repo_id, cache_dir)
    if done is not None:
        files = dict(cache_info(repo_id, cache_dir).get("files", {}))
        return FetchResult(repo_id, done, reused=True, files=files)
    base = hub_endpoint(endpoint)
    if _offline():
        raise _unreachable(base, "HF_HUB_OFFLINE is set")
    own = client is None
    http = client or httpx.Client(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        follow_redirects=True,
        headers=_auth_headers(),
        event_hooks={"request": [redirect_guard(base)]},
    )
    try:
        return _fetch(http, repo_id, Path(cache_dir), base, fp16, revision, progress, retries)
    finally:
        if own:
            http.close()


def redirect_guard(endpoint: str) -> Callable[[httpx.Request], None]:
    """A request hook (httpx calls it for every hop of a redirect too): the configured
    endpoint's own host may be anything the admin chose (a mirror on the LAN, a test hub on
    loopback); any other host a hub redirects us to must be http(s) and resolve only to
    public addresses, so a hostile mirror cannot make us fetch from the cloud metadata
    service or an internal host and keep the answer in the model cache."""
    own = httpx.URL(endpoint).host

    def check(request: httpx.Request) -> None:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise ModelLoadError(f"the model hub redirected to a {url.scheme}: URL; refused")
        if url.host == own:
            return
        try:
            infos = socket.getaddrinfo(url.host, url.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise _unreachable(endpoint, exc) from exc
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if not address.is_global:
                raise ModelLoadError(
                    f"the model hub redirected to {url.host} ({address}), which is not a "
                    "public address; refused"
                )

    return check


def _auth_headers() -> dict[str, str]:
    token = os.environ.get("HF_TOKEN", "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _get_json(http: httpx.Client, url: str, base: str, repo_id: str) -> Any:
    try:
        r = http.get(url)
    except httpx.TransportError as exc:
        raise _unreachable(base, exc) from exc
    if r.status_code in (401, 403):
        raise ModelLoadError(
            f"the model hub at {base} refused {repo_id} (HTTP {r.status_code}): it may be "
            "gated or private; accept its licence on the hub and set HF_TOKEN"
        )
    if r.status_code == 404:
        raise ModelLoadError(f"the model hub at {base} has no model {repo_id!r}")
    if r.status_code >= 400:
        raise _unreachable(base, f"HTTP {r.status_code} for {url}")
    return r.json()


def _fetch(
    http: httpx.Client,
    repo_id: str,
    cache_dir: Path,
    base: str,
    fp16: bool,
    revision: str,
    progress: Progress | None,
    retries: int,
) -> FetchResult:
    listing = f"{base}/api/models/{repo_id}/revision/{revision}?blobs=true"
    info = _get_json(http, listing, base, repo_id)
    sha = str(info.get("sha") or revision)
    sizes = {
        str(s["rfilename"]): int(s.get("size") or 0)
        for s in info.get("siblings", [])
        if isinstance(s, dict) and "rfilename" in s
    }
    if "model_index.json" not in sizes:
        raise ModelLoadError(f"{repo_id} on {base} is not a diffusers model (no model_index.json)")
    target = model_dir(repo_id, cache_dir)
    target.mkdir(parents=True, exist_ok=True)
    state = _Transfer(progress, total=sizes["model_index.json"])
    get = functools.partial(
        _download, http, base, repo_id, sha, state=state, retries=retries, sizes=sizes
    )
    get("model_index.json", target / "model_index.json")
    index = json.loads((target / "model_index.json").read_text(encoding="utf-8"))
    plan = select_files(index, list(sizes), fp16=fp16)
    state.total += sum(sizes.get(remote, 0) for remote in plan.values())
    state.report()
    for local, remote in plan.items():
        get(remote, target / local)
    files = {local: (target / local).stat().st_size for local in ["model_index.json", *plan]}
    marker = {
        "repo_id": repo_id,
        "commit": sha,
        "endpoint": base,
        "fp16": fp16,
        "files": files,
        "fetched_at": time.time(),
    }
    tmp = target / (COMPLETE_MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1), encoding="utf-8")
    tmp.replace(target / COMPLETE_MARKER)
    return FetchResult(repo_id, target, reused=False, downloaded_bytes=state.network, files=files)


def select_files(index: dict[str, Any], remote_files: list[str], *, fp16: bool) -> dict[str, str]:
    """-> {local path: remote path} for the components ``model_index.json`` names."""
    components = [
        name
        for name, value in index.items()
        if not name.startswith("_")
        and isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
    ]
    plan: dict[str, str] = {}
    for comp in components:
        if not _COMPONENT.match(comp):
            raise ModelLoadError(
                f"the model's model_index.json names a component {comp!r}, which is not a "
                "plain folder name; refusing to write outside the model directory"
            )
        inside = [f for f in remote_files if f.startswith(f"{comp}/") and f.count("/") == 1]
        for f in inside:
            if f.endswith(_CONFIG_SUFFIXES) and ".fp16." not in f:
                plan[f] = f
        plain = {f for f in inside if f.endswith(".safetensors") and not _VARIANT.match(f)}
        variants = {m["stem"] + ".safetensors": f for f in inside if (m := _VARIANT.match(f))}
        if not plain and not variants and any(f.endswith(_PICKLE_SUFFIXES) for f in inside):
            raise ModelLoadError(
                f"the model's {comp} has no .safetensors weights (only pickled ones, which "
                "Dreamloom does not download); pick a model that ships safetensors"
            )
        for name in sorted(plain | set(variants)):
            use_variant = name in variants and (fp16 or name not in plain)
            plan[name] = variants[name] if use_variant else name
    return plan


class _Transfer:
    """Bytes on disk out of the total, for the progress callback; bytes from the network."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.network = 0

    def add(self, n: int, *, network: bool) -> None:
        self.done += n
        if network:
            self.network += n
        self.report()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


def _download(
    http: httpx.Client,
    base: str,
    repo_id: str,
    sha: str,
    remote: str,
    dest: Path,
    *,
    state: _Transfer,
    retries: int,
    sizes: dict[str, int] | None = None,
) -> None:
    """One file to ``dest`` via ``dest.part``, resuming from what the part file holds; never
    more bytes than the listing gave for it (when it gave a size): a hub that sends more is
    refused and the part file deleted, so a hostile or broken hub cannot fill the disk."""
    limit = (sizes or {}).get(remote) or None
    url = f"{base}/{repo_id}/resolve/{sha}/{remote}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    etag_file = dest.with_name(dest.name + ".part.etag")
    counted = 0  # bytes of this file already added to the progress
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        headers = {"Accept-Encoding": "identity"}  # byte offsets are the file's own
        if have:
            headers["Range"] = f"bytes={have}-"
            if etag_file.is_file():
                headers["If-Range"] = etag_file.read_text(encoding="utf-8")
        try:
            with http.stream("GET", url, headers=headers) as r:
                if r.status_code == 416 and have:  # nothing left to send: the part is whole
                    break
                if r.status_code >= 400:
                    if r.status_code in (401, 403, 404):
                        raise ModelLoadError(
                            f"the model hub at {base} refused {repo_id}/{remote} "
                            f"(HTTP {r.status_code})"
                        )
                    raise httpx.RemoteProtocolError(f"HTTP {r.status_code}")
                resumed = r.status_code == 206
                if not resumed:
                    have = 0
                etag = r.headers.get("x-linked-etag") or r.headers.get("etag")
                if etag:
                    etag_file.write_text(etag, encoding="utf-8")
                length = r.headers.get("content-length")
                expected = have + int(length) if length is not None else None
                if have != counted:  # what the part file holds counts as done
                    state.add(have - counted, network=False)
                counted = have
                with open(part, "ab" if resumed else "wb") as f:
                    for chunk in r.iter_bytes():  # as received: a drop loses nothing
                        if limit is not None and counted + len(chunk) > limit:
                            f.close()
                            part.unlink(missing_ok=True)
                            raise ModelLoadError(
                                f"the model hub at {base} sent more than the {limit} bytes "
                                f"its listing gives for {repo_id}/{remote}; refused"
                            )
                        f.write(chunk)
                        counted += len(chunk)
                        state.add(len(chunk), network=True)
            if expected is not None and part.stat().st_size != expected:
                raise httpx.RemoteProtocolError("the connection closed before the file ended")
            break
        except httpx.TransportError as exc:
            if attempt >= retries:
                raise _unreachable(base, f"{remote}: {type(exc).__name__}: {exc}") from exc
            time.sleep(min(0.2 * 2**attempt, 2.0))
    part.replace(dest)
    etag_file.unlink(missing_ok=True)
