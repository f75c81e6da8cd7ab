"""RSA key generation and cached PEM loading.

Keys travel as PEM strings (PKCS#8 private, SubjectPublicKeyInfo public) so that the
application can store them as text. Loading a PEM is far slower than one RSA verification,
so the loaders are memoised on the PEM string: verifying a request with a known key costs
one dictionary lookup plus the RSA operation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from activitypub.errors import KeyFormatError

RSA_KEY_BITS = 2048
_PUBLIC_EXPONENT = 65537


class KeyPair(NamedTuple):
    """A freshly generated key pair as PEM strings."""

    private_pem: str
    public_pem: str


@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    """A remote actor's public key as published in its `publicKey` block."""

    key_id: str
    owner: str
    public_pem: str


def generate_rsa_keypair(bits: int = RSA_KEY_BITS) -> KeyPair:
    """Generate an RSA key pair: (PKCS#8 private PEM, SPKI public PEM), with real newlines."""
    key = rsa.generate_private_key(public_exponent=_PUBLIC_EXPONENT, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return KeyPair(private_pem, _public_pem(key.public_key()))


def public_pem_of(private_pem: str) -> str:
    """Return the SPKI public PEM matching a private PEM."""
    return _public_pem(load_private_key(private_pem).public_key())


@functools.lru_cache(maxsize=4096)
def load_public_key(public_pem: str) -> rsa.RSAPublicKey:
    """Parse a public PEM (SPKI or PKCS#1) into an RSA key object; memoised."""
    try:
        key = serialization.load_pem_public_key(public_pem.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError, TypeError) as exc:
        raise KeyFormatError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError("public key is not RSA")
    if key.key_size < RSA_KEY_BITS:
        raise KeyFormatError(f"RSA key too small ({key.key_size} bits)")
    return key


@functools.lru_cache(maxsize=256)
def load_private_key(private_pem: str) -> rsa.RSAPrivateKey:
    """Parse an unencrypted private PEM into an RSA key object; memoised."""
    try:
        key = serialization.load_pem_private_key(private_pem.strip().encode("ascii"), None)
    except (ValueError, UnicodeEncodeError, TypeError) as exc:
        raise KeyFormatError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError("private key is not RSA")
    return key


def _public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")
