"""C2PA manifests with c2pa-python (skipped when it is not installed)."""

from __future__ import annotations

import io
import stat
import sys

import numpy as np
import pytest
from PIL import Image

from generator.errors import ProvenanceError
from generator.png import encode_png, read_recipe
from generator.provenance import (
    RECIPE_ASSERTION,
    TRAINED_ALGORITHMIC_MEDIA,
    C2PASigner,
    ensure_instance_credentials,
    make_self_signed_credentials,
    read_manifest,
)
from generator.recipe import Recipe

c2pa = pytest.importorskip("c2pa")

RECIPE = Recipe(prompt="a lantern", seed=3, steps=2, width=32, height=32, model="builtin:tiny")


@pytest.fixture(scope="module")
def signer() -> C2PASigner:
    return C2PASigner(make_self_signed_credentials("dream.example"))


def png(colour: str, recipe: Recipe = RECIPE) -> bytes:
    return encode_png(Image.new("RGB", (32, 32), colour), recipe).data


def active(manifest: dict) -> dict:
    return manifest["manifests"][manifest["active_manifest"]]


def test_created_by_trained_algorithm_with_the_recipe(signer: C2PASigner) -> None:
    original = png("red")
    signed = signer(original, RECIPE)
    m = read_manifest(signed)
    assert m is not None
    assertions = {a["label"]: a["data"] for a in active(m)["assertions"]}
    actions = next(v for k, v in assertions.items() if k.startswith("c2pa.actions"))["actions"]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert assertions[RECIPE_ASSERTION] == RECIPE.to_json()
    assert active(m)["signature_info"]["common_name"] == "dream.example"
    # a self-made CA is untrusted, and nothing else is wrong
    assert [s["code"] for s in m.get("validation_status", [])] == ["signingCredential.untrusted"]
    # pixels and our own recipe chunk survive signing
    with Image.open(io.BytesIO(signed)) as a, Image.open(io.BytesIO(original)) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert read_recipe(signed) == RECIPE


def test_remix_records_its_parent_as_an_ingredient(signer: C2PASigner) -> None:
    remix = Recipe(prompt="a lantern, blue", seed=4, steps=2, width=32, height=32,
                   parent="https://other.example/media/p.png", strength=0.5)
    m = read_manifest(signer(png("green", remix), remix, png("blue")))
    assert m is not None
    (ingredient,) = active(m)["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["title"] == "https://other.example/media/p.png"


def test_unsigned_png_has_no_manifest() -> None:
    assert read_manifest(png("red")) is None


def test_instance_credentials_are_made_once_and_kept_private(tmp_path) -> None:
    a = ensure_instance_credentials(tmp_path / "keys", common_name="dream.example")
    assert stat.S_IMODE((tmp_path / "keys" / "c2pa-key.pem").stat().st_mode) == 0o600
    assert a.chain_pem.count(b"BEGIN CERTIFICATE") == 2
    assert ensure_instance_credentials(tmp_path / "keys", common_name="x") == a


def test_missing_package_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "c2pa", None)
    with pytest.raises(ProvenanceError, match=r"pip install c2pa-python"):
        C2PASigner(make_self_signed_credentials("x"))


async def test_worker_signs_generated_images(tmp_path, signer: C2PASigner) -> None:
    from generator.testing import FakePipeline, InMemoryJobStore
    from generator.worker import GeneratorWorker

    store = InMemoryJobStore()
    job = store.enqueue(Recipe(prompt="a lantern", seed=3, width=32, height=32))
    worker = GeneratorWorker(lambda: FakePipeline(), store, tmp_path, sign=signer)
    try:
        await worker.run_once()
    finally:
        await worker.close()
    result = store.get(job).result
    assert result is not None and result.c2pa
    m = read_manifest(result.read_bytes())
    assert m is not None
    assert {a["label"]: a["data"] for a in active(m)["assertions"]}[RECIPE_ASSERTION] == (
        result.recipe.to_json()
    )
