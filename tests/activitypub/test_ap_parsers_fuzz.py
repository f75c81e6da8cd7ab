"""Seeded fuzzing of the header parsers: garbage in, only typed errors out, never a crash.

A deterministic mutation fuzzer (no extra dependency): it mutates valid headers and random
printable strings and asserts that the parsers raise nothing but their documented error.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from activitypub.errors import InvalidURLError, SignatureError
from activitypub.signatures import parse_signature_header
from activitypub.structured_fields import StructuredFieldError, parse_dictionary
from activitypub.urls import origin_of

SEEDS = [
    'keyId="https://a.example/users/alice#main-key",algorithm="rsa-sha256",'
    'headers="(request-target) host date digest",signature="QUJDRA=="',
    'keyId="k",created=1700000000,expires=1700000300.5,signature="AAAA"',
]
SF_SEEDS = [
    'sig1=("@method" "@target-uri" "content-digest");created=1700000000;'
    'keyid="https://a.example/k";alg="rsa-v1_5-sha256"',
    "sig1=:QUJDRA==:, sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
    'a=?1;b=-12.5, c=tok/en:x, d=("x";y=1 2);z',
]
ALPHABET = 'abcdefghijklmnopqrstuvwxyz=,;:()"\\ \t?-*./0123456789@#\x00\x7fé\u202e'


def mutations(seeds: list[str], count: int, rng: random.Random):
    for _ in range(count):
        text = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            op = rng.randrange(3)
            pos = rng.randrange(len(text) + 1)
            if op == 0:
                text.insert(pos, rng.choice(ALPHABET))
            elif op == 1 and text:
                del text[min(pos, len(text) - 1)]
            elif text:
                text[min(pos, len(text) - 1)] = rng.choice(ALPHABET)
        yield "".join(text)
    for _ in range(count // 4):
        yield "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80)))


@pytest.mark.parametrize("seed", range(4))
def test_signature_header_parser_only_raises_signature_error(seed: int) -> None:
    for text in mutations(SEEDS, 1500, random.Random(seed)):
        with contextlib.suppress(SignatureError):
            parse_signature_header(text)


@pytest.mark.parametrize("seed", range(4))
def test_structured_field_parser_only_raises_its_error(seed: int) -> None:
    for text in mutations(SF_SEEDS, 1500, random.Random(seed)):
        with contextlib.suppress(StructuredFieldError):
            parse_dictionary(text)


@pytest.mark.parametrize("seed", range(2))
def test_url_normaliser_only_raises_invalid_url(seed: int) -> None:
    seeds = ["https://A.Example./users/x?y=1", "http://[::1]:8080/a", "https://bücher.example/"]
    for text in mutations(seeds, 1500, random.Random(seed)):
        with contextlib.suppress(InvalidURLError):
            origin_of(text)


def test_huge_inputs_are_refused_quickly() -> None:
    with pytest.raises(SignatureError):
        parse_signature_header('keyId="' + "a" * 100_000 + '"')
    with pytest.raises(StructuredFieldError):
        parse_dictionary("a=" + "(" * 100_000)
