"""How a generated image says it is one, to people and to filters (the file itself says so
too: XMP in generator/png.py, C2PA in generator/provenance.py).

- Its alt text starts with AI_ALT_PREFIX, then the prompt.
- Its post ends with the AI hashtag (`[generator] ai_hashtag`, "AIGenerated" by default; ""
  for none), visible in the text and listed as a Hashtag tag, which keyword filters match.
"""

from __future__ import annotations

from instance.settings import Settings

AI_ALT_PREFIX = "AI-generated image: "


def ai_alt_text(prompt: str) -> str:
    return f"{AI_ALT_PREFIX}{prompt}"


def ai_alt(text: str) -> str:
    """Alt text someone wrote for a generated image, starting with AI_ALT_PREFIX (once)."""
    return text if text.startswith(AI_ALT_PREFIX) else ai_alt_text(text)


def ai_labelled(text: str, settings: Settings) -> str:
    """The text of a post of a generated image, ending with the AI hashtag (once)."""
    tag = settings.generator.ai_hashtag.strip().lstrip("#")
    if not tag or f"#{tag}".lower() in text.lower():
        return text
    return f"{text} #{tag}"
