"""PNG files that carry their recipe, and blurhash placeholders.

:func:`encode_png` writes the image losslessly with two text chunks, both before the pixel
data so readers need not decode the image to find them:

- ``dreamloom:recipe`` (iTXt, UTF-8): the recipe's wire JSON (:meth:`Recipe.to_json`);
- ``parameters`` (tEXt, or iTXt when not Latin-1): the human-readable summary that
  AUTOMATIC1111-style tools show (:meth:`Recipe.parameters_text`);
- ``XML:com.adobe.xmp`` (iTXt): an XMP packet saying, machine-readably, that a model made
  the image: IPTC ``Iptc4xmpExt:DigitalSourceType`` ``trainedAlgorithmicMedia`` (what the EU
  AI Act's marking duty and the photo tools that show "AI generated" read), the software
  as ``xmp:CreatorTool``, and the recipe.

Encoding is deterministic: the same pixels and recipe give the same bytes (no timestamps),
so the file hash is a stable identity until a C2PA manifest is added.

:func:`read_recipe` reads the recipe back from a file or bytes without decoding pixels.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, PngImagePlugin

from generator.errors import RecipeError
from generator.recipe import Recipe

RECIPE_KEY = "dreamloom:recipe"
PARAMETERS_KEY = "parameters"
XMP_KEY = "XML:com.adobe.xmp"
TRAINED_ALGORITHMIC_MEDIA = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
)
IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
XMP_TEMPLATE = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="{iptc}"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dreamloom="https://dreamloom.dev/ns#"
    Iptc4xmpExt:DigitalSourceType="{source}"
    xmp:CreatorTool="Dreamloom">
   <dreamloom:recipe>{recipe}</dreamloom:recipe>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""
BLURHASH_MAX_SIDE = 32
"""Blurhash is computed on a thumbnail: the placeholder has no detail to lose, and the
pure-Python encoder costs O(pixels x components)."""


@dataclass(frozen=True, slots=True)
class EncodedPNG:
    """An encoded PNG and what a post needs to know about it."""

    data: bytes
    sha256: str
    width: int
    height: int
    blurhash: str


def compute_blurhash(image: Image.Image, x_components: int = 4, y_components: int = 3) -> str:
    """Blurhash of ``image`` with ``x_components`` x ``y_components`` (1..5 each; 4x3 default)."""
    import blurhash

    for n in (x_components, y_components):
        if not 1 <= n <= 5:
            raise ValueError(f"blurhash components must be between 1 and 5, got {n}")
    thumb = image.convert("RGB")
    thumb.thumbnail((BLURHASH_MAX_SIDE, BLURHASH_MAX_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(thumb, dtype=np.uint8).tolist()
    return str(blurhash.encode(pixels, x_components, y_components))


def encode_png(
    image: Image.Image,
    recipe: Recipe,
    *,
    blurhash_components: tuple[int, int] = (4, 3),
    compress_level: int = 6,
) -> EncodedPNG:
    """Encode ``image`` as PNG with the recipe in text chunks, plus hash and blurhash."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, json.dumps(recipe.to_json(), ensure_ascii=False, sort_keys=True))
    info.add_text(PARAMETERS_KEY, recipe.parameters_text())
    info.add_itxt(XMP_KEY, xmp_packet(recipe))
    buf = io.BytesIO()
    rgb = image if image.mode in ("RGB", "RGBA") else image.convert("RGB")
    rgb.save(buf, format="PNG", pnginfo=info, compress_level=compress_level)
    data = buf.getvalue()
    return EncodedPNG(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        width=rgb.width,
        height=rgb.height,
        blurhash=compute_blurhash(rgb, *blurhash_components),
    )


def xmp_packet(recipe: Recipe) -> str:
    """The XMP that marks the image as made by a model, with its recipe."""
    recipe_json = json.dumps(recipe.to_json(), ensure_ascii=False, sort_keys=True)
    return XMP_TEMPLATE.format(iptc=IPTC_EXT, source=TRAINED_ALGORITHMIC_MEDIA,
                               recipe=escape(recipe_json))  # fmt: skip


def read_text_chunks(source: Path | bytes) -> dict[str, str]:
    """The PNG's text chunks that precede the pixel data (tEXt, zTXt, iTXt)."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    with stream, Image.open(stream, formats=["PNG"]) as im:
        return {str(k): str(v) for k, v in im.info.items() if isinstance(v, str)}


def read_recipe(source: Path | bytes) -> Recipe | None:
    """The recipe stored in a PNG by :func:`encode_png`, or None if it has none.

    Raises :class:`RecipeError` when a recipe chunk is present but invalid.
    """
    raw = read_text_chunks(source).get(RECIPE_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RecipeError(f"{RECIPE_KEY} chunk is not valid JSON: {exc}") from exc
    return Recipe.from_json(data)
