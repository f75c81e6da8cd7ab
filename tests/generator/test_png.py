"""PNG writing with the recipe in text chunks; blurhash."""

from __future__ import annotations

import io
import json
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from generator.errors import RecipeError
from generator.png import (
    PARAMETERS_KEY,
    RECIPE_KEY,
    TRAINED_ALGORITHMIC_MEDIA,
    XMP_KEY,
    compute_blurhash,
    encode_png,
    read_recipe,
    read_text_chunks,
)
from generator.recipe import Recipe


def gradient(w: int = 64, h: int = 48) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 4 % 256, y * 5 % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


RECIPE = Recipe(prompt="un phare, été 🌅", negative_prompt="flou", seed=7, steps=2,
                width=64, height=48, model="builtin:tiny")


def test_roundtrip_recipe_and_pixels(tmp_path) -> None:
    im = gradient()
    enc = encode_png(im, RECIPE)
    assert (enc.width, enc.height) == (64, 48)
    assert read_recipe(enc.data) == RECIPE
    path = tmp_path / "a.png"
    path.write_bytes(enc.data)
    assert read_recipe(path) == RECIPE
    with Image.open(io.BytesIO(enc.data)) as back:
        assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(im))


def test_chunks_are_json_and_human_readable() -> None:
    chunks = read_text_chunks(encode_png(gradient(), RECIPE).data)
    assert json.loads(chunks[RECIPE_KEY])["negativePrompt"] == "flou"
    assert chunks[PARAMETERS_KEY].startswith("un phare, été 🌅\nNegative prompt: flou\n")
    assert "Seed: 7" in chunks[PARAMETERS_KEY]


def test_xmp_says_a_model_made_the_image() -> None:
    """The EU AI Act (art. 50) asks for machine-readable marking of generated images; the
    IPTC digital source type `trainedAlgorithmicMedia` in XMP is what photo tools, social
    sites and the IPTC/C2PA guidance read. The packet parses as XML and holds the recipe."""
    data = encode_png(gradient(), RECIPE).data
    packet = read_text_chunks(data)[XMP_KEY]
    root = ElementTree.fromstring(packet.split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    (description,) = root.iter(f"{rdf}Description")
    iptc = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}"
    assert description.get(f"{iptc}DigitalSourceType") == TRAINED_ALGORITHMIC_MEDIA
    recipe = description.find("{https://dreamloom.dev/ns#}recipe")
    assert recipe is not None and Recipe.from_json(json.loads(recipe.text or "")) == RECIPE
    assert data.index(XMP_KEY.encode()) < data.index(b"IDAT")


def test_chunks_come_before_pixel_data() -> None:
    data = encode_png(gradient(), RECIPE).data
    assert data.index(RECIPE_KEY.encode()) < data.index(b"IDAT")
    assert data.index(PARAMETERS_KEY.encode()) < data.index(b"IDAT")


def test_encoding_is_deterministic() -> None:
    a, b = encode_png(gradient(), RECIPE), encode_png(gradient(), RECIPE)
    assert a.data == b.data and a.sha256 == b.sha256 and len(a.sha256) == 64


def test_plain_png_has_no_recipe() -> None:
    buf = io.BytesIO()
    gradient().save(buf, format="PNG")
    assert read_recipe(buf.getvalue()) is None


def test_corrupt_recipe_chunk_is_a_recipe_error() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, "{not json")
    buf = io.BytesIO()
    gradient().save(buf, format="PNG", pnginfo=info)
    with pytest.raises(RecipeError, match="not valid JSON"):
        read_recipe(buf.getvalue())


def test_blurhash_components() -> None:
    im = gradient()
    h43 = compute_blurhash(im)
    assert len(h43) == 6 + 2 * (4 * 3 - 1)
    assert compute_blurhash(im) == h43
    assert len(compute_blurhash(im, 5, 5)) == 6 + 2 * 24
    assert encode_png(im, RECIPE).blurhash == h43
    assert compute_blurhash(Image.new("RGB", (64, 64), "red")) != h43
    with pytest.raises(ValueError, match="between 1 and 5"):
        compute_blurhash(im, 6, 3)
