"""`dreamloom generate`, `post`, `queue` and `bench generate` end to end on builtin:tiny."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from generator.png import read_recipe, read_text_chunks
from instance.cli import app
from instance.generation.requests import enqueue
from instance.runtime import open_runtime
from instance.settings import load_settings
from instance.setup import ensure_instance
from tests.instance.generation_fixtures import TINY_ENV, run_sync, share_cache, tiny_cache  # noqa: F401
from tests.instance_fixtures import AP_ACCEPT, asgi_client, free_port

runner = CliRunner()


@pytest.fixture
def inst(tmp_path: Path, tiny_cache: Path) -> Path:  # noqa: F811
    d = tmp_path / "inst"
    r = runner.invoke(app, ["init", "--domain", f"127.0.0.1:{free_port()}", "--scheme", "http",
                            "--dir", str(d)])  # fmt: skip
    assert r.exit_code == 0, r.output
    share_cache(load_settings(d / "config.toml"), tiny_cache)
    r = runner.invoke(app, ["account", "create", "painter", "--ai", "--persona", "ink wash",
                            "--no-pictures", "--dir", str(d)])  # fmt: skip
    assert r.exit_code == 0, r.output
    return d


def dl(inst: Path, *args: str, **env: str):
    return runner.invoke(app, [*args, "--dir", str(inst)], env={**TINY_ENV, **env})


def generate(inst: Path, *args: str, **env: str) -> dict:
    r = dl(inst, "generate", "painter", *args, "--size", "32x32", "--steps", "2", "--json", **env)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def one_line_error(r) -> str:
    assert r.exit_code == 1, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert "Traceback" not in r.output
    return errors[0]


def test_generate_writes_a_png_with_its_recipe(inst: Path) -> None:
    r = dl(inst, "generate", "painter", "a heron", "--seed", "7", "--size", "32x32",
           "--steps", "2")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "builtin:tiny" in r.stderr and "noise" in r.stderr and "[generator] model" in r.stderr
    path = Path(r.stdout.split("image: ", 1)[1].split()[0])
    assert path.is_file() and path.parent == inst / "data" / "media"
    recipe = read_recipe(path)
    assert recipe.prompt == "a heron, ink wash"
    assert (recipe.seed, recipe.steps, recipe.width, recipe.height) == (7, 2, 32, 32)
    assert recipe.model == "builtin:tiny" and recipe.weights_hash.startswith("sha256:")
    assert "Seed: 7" in read_text_chunks(path)["parameters"]
    with Image.open(path) as im:
        assert im.size == (32, 32)


def test_same_seed_same_image_other_seed_other_image(inst: Path) -> None:
    a, b, c = (generate(inst, "a heron", "--seed", s) for s in ("5", "5", "6"))
    assert a["path"] != b["path"]  # each job has its own file
    same = [np.asarray(Image.open(x["path"])) for x in (a, b)]
    assert np.array_equal(*same)  # the pixels (each file's C2PA manifest has its own time)
    pixels = [np.asarray(Image.open(x["path"])) for x in (a, c)]
    assert not np.array_equal(*pixels)


def test_post_publishes_a_note_with_the_image(inst: Path) -> None:
    r = dl(inst, "post", "painter", "a heron at dusk", "--seed", "3", "--steps", "1",
           "--size", "32x32", "--cw", "birds", "--language", "de", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["status"] == "done" and out["post_url"]
    note = run_sync(fetch_note(inst, out))
    assert note["type"] == "Note" and "a heron at dusk" in note["content"]
    (att,) = note["attachment"]
    assert att["type"] == "Image" and att["mediaType"] == "image/png"
    assert att["url"] == out["url"]
    assert att["name"] == "AI-generated image: a heron at dusk, ink wash"
    assert note["recipe"]["seed"] == 3
    # a content warning is Mastodon's summary + sensitive; the language keys contentMap
    assert note["summary"] == "birds" and note["sensitive"] is True
    assert list(note["contentMap"]) == ["de"]

    # the author edits it: an Update with the new text, the warning taken off
    r = dl(inst, "edit", "painter", note["id"], "a grey heron at dusk", "--cw", "", "--json")
    assert r.exit_code == 0, r.output
    note = run_sync(fetch_note(inst, out))
    assert "a grey heron" in note["content"] and "summary" not in note and note["updated"]
    missing = dl(inst, "edit", "painter", "https://elsewhere.example/1", "x")
    assert "no local post at https://elsewhere.example/1" in one_line_error(missing)


def test_a_bad_language_is_refused_before_anything_is_queued(inst: Path) -> None:
    r = dl(inst, "post", "painter", "a heron", "--language", "klingon!")
    assert "'klingon!' is not a language code" in one_line_error(r)
    assert json.loads(dl(inst, "queue", "--json", "--all").stdout) == []


async def fetch_note(inst: Path, out: dict) -> dict:
    """The Note of the post `out` (the post command's JSON) names, as we serve it."""
    rt = await open_runtime(load_settings(inst / "config.toml"))
    try:
        await ensure_instance(rt)
        async with asgi_client(rt) as client:
            page = await client.get(out["post_url"])
            assert page.status_code == 200 and out["url"] in page.text
            note_url = page.headers["Link"].split(">", 1)[0].lstrip("<")
            return (await client.get(note_url, headers=AP_ACCEPT)).json()
    finally:
        await rt.aclose()


def test_bad_model_path_names_the_setting(inst: Path) -> None:
    r = dl(inst, "generate", "painter", "a heron", DREAMLOOM_GENERATOR_MODEL="/no/such/model")
    line = one_line_error(r)
    assert "[generator] model = '/no/such/model'" in line
    queued = json.loads(dl(inst, "queue", "--json").stdout)
    assert queued[0]["status"] == "failed" and "[generator] model" in queued[0]["reason"]


def test_unreachable_hub_says_so(inst: Path) -> None:
    r = dl(inst, "generate", "painter", "a heron", DREAMLOOM_GENERATOR_MODEL="nobody/no-model")
    line = one_line_error(r)
    assert "hub id" in line and "HF_HUB_OFFLINE" in line and "[generator] model" in line


def test_too_long_prompt_is_refused_not_truncated(inst: Path) -> None:
    dl(inst, "account", "create", "plain")
    r = dl(inst, "generate", "plain", "a" * 76, "--size", "32x32")
    assert "prompt too long: 78 tokens, max 77" in one_line_error(r)
    # refused by the model's tokenizer before it is queued, never silently truncated
    assert json.loads(dl(inst, "queue", "--json", "--all").stdout) == []


def test_full_queue_is_refused(inst: Path) -> None:
    async def fill() -> None:
        rt = await open_runtime(load_settings(inst / "config.toml", env={}))
        try:
            from instance.accounts import get_local

            async with rt.session() as s:
                painter = await get_local(s, "painter")
                await enqueue(s, rt, painter, "waiting", size=(32, 32))
        finally:
            await rt.aclose()

    run_sync(fill())
    r = dl(inst, "generate", "painter", "a heron", DREAMLOOM_GENERATOR_MAX_QUEUE="1")
    line = one_line_error(r)
    assert "queue is full" in line and "max_queue is 1" in line and "try again" in line
    shown = dl(inst, "queue")
    assert shown.exit_code == 0 and "1 of at most" in shown.stdout and "queued" in shown.stdout


def test_unknown_account_is_one_line(inst: Path) -> None:
    assert "no local account named 'nobody'" in one_line_error(
        dl(inst, "generate", "nobody", "a heron")
    )


def test_bench_generate_runs_both_paths(inst: Path) -> None:
    r = dl(inst, "bench", "generate", "--model", "builtin:tiny", "--device", "cpu",
           "--batch-sizes", "1,2", "--iterations", "1", "--size", "32x32", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert set(report["results"]) == {"dreamloom", "diffusers"}
    assert report["batch_sizes"] == [1, 2] and report["size"] == 32
    assert report["latency_speedup"] > 0 and set(report["throughput_speedup"]) == {"1", "2"}
