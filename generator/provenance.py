"""Optional C2PA provenance: a signed manifest embedded in each generated PNG.

The manifest records a ``c2pa.created`` action with ``digitalSourceType``
``trainedAlgorithmicMedia`` (IPTC), the software agent, and the recipe (a ``dreamloom.recipe``
assertion holding :meth:`Recipe.to_json`). A remix also records its parent image as a
``parentOf`` ingredient. Pixels are unchanged; the file grows by the manifest and the
certificate chain.

It is signed with the instance's key and certificate chain (ES256, P-256). When the admin
supplies none, :func:`ensure_instance_credentials` makes a self-signed CA and a leaf
certificate (valid 10 years) with :mod:`cryptography` and keeps them on disk; validators then
report ``signingCredential.untrusted``, which is expected: trust comes from a CA that a C2PA
trust list knows, not from us.

``c2pa-python`` is a dependency, imported lazily; where it is missing (a platform without
its wheels) :class:`C2PASigner` raises :class:`ProvenanceError` saying how to install it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import ProvenanceError
from generator.png import TRAINED_ALGORITHMIC_MEDIA
from generator.recipe import Recipe

RECIPE_ASSERTION = "dreamloom.recipe"
INSTALL_HINT = "install it with `pip install c2pa-python` (a dependency of Dreamloom)"


def c2pa_available() -> bool:
    """True when c2pa-python can be imported."""
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return False
    return True


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError as exc:
        raise ProvenanceError(f"C2PA provenance needs c2pa-python: {INSTALL_HINT}") from exc
    return c2pa


@dataclass(frozen=True, slots=True)
class Credentials:
    """PEM-encoded signing key and certificate chain (leaf first, then the CA)."""

    key_pem: bytes
    chain_pem: bytes


def ensure_instance_credentials(directory: Path, *, common_name: str) -> Credentials:
    """Load ``c2pa-key.pem`` + ``c2pa-chain.pem`` from ``directory``, creating them if absent.

    The key file is written with mode 0600. ``common_name`` is the instance's host name.
    """
    key_path, chain_path = directory / "c2pa-key.pem", directory / "c2pa-chain.pem"
    if key_path.is_file() and chain_path.is_file():
        return Credentials(key_path.read_bytes(), chain_path.read_bytes())
    creds = make_self_signed_credentials(common_name)
    directory.mkdir(parents=True, exist_ok=True)
    chain_path.write_bytes(creds.chain_pem)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(creds.key_pem)
    return creds


def make_self_signed_credentials(common_name: str, *, days: int = 3650) -> Credentials:
    """A self-signed CA and a leaf certificate fit for C2PA signing (ES256)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dreamloom instance"),
            ]
        )

    ca_name = name(f"{common_name} Dreamloom CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Credentials(key_pem, leaf_cert.public_bytes(pem) + ca_cert.public_bytes(pem))


def manifest_definition(
    recipe: Recipe, *, software: str, title: str | None = None
) -> dict[str, Any]:
    """The manifest JSON for one generated image (before ingredients)."""
    return {
        "claim_generator_info": [{"name": software}],
        "title": title or f"{recipe.prompt[:60]}.png",
        "format": "image/png",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": software},
                            "parameters": {"description": "generated from a text prompt"},
                        }
                    ]
                },
            },
            {"label": RECIPE_ASSERTION, "data": recipe.to_json()},
        ],
    }


class C2PASigner:
    """Callable ``(png, recipe, parent_png) -> signed png`` for :class:`GeneratorWorker`."""

    def __init__(
        self, credentials: Credentials, *, software: str = "Dreamloom", thumbnail: bool = False
    ) -> None:
        self.credentials = credentials
        self.software = software
        self._c2pa = _c2pa()
        # a JPEG thumbnail of our own image inside the image adds ~60 KB and nothing else
        self._settings = {"builder": {"thumbnail": {"enabled": thumbnail}}}

    def __call__(self, png: bytes, recipe: Recipe, parent_png: bytes | None = None) -> bytes:
        c2pa = self._c2pa
        try:
            info = c2pa.C2paSignerInfo(
                c2pa.C2paSigningAlg.ES256,
                self.credentials.chain_pem,
                self.credentials.key_pem,
                None,
            )
            signer = c2pa.Signer.from_info(info)
            definition = manifest_definition(recipe, software=self.software)
            context = c2pa.Context.from_dict(self._settings)
            with c2pa.Builder(definition, context) as builder:
                if parent_png is not None:
                    ingredient = {
                        "title": recipe.parent or "parent.png",
                        "relationship": "parentOf",
                    }
                    builder.add_ingredient(ingredient, "image/png", io.BytesIO(parent_png))
                dest = io.BytesIO()
                builder.sign(signer, "image/png", io.BytesIO(png), dest)
            signer.close()
        except c2pa.C2paError as exc:
            raise ProvenanceError(f"C2PA signing failed: {exc}") from exc
        return dest.getvalue()


def read_manifest(png: bytes) -> dict[str, Any] | None:
    """The active manifest store of a PNG as a dict (None when it has none)."""
    c2pa = _c2pa()
    try:
        reader = c2pa.Reader.try_create("image/png", io.BytesIO(png))
    except c2pa.C2paError as exc:
        raise ProvenanceError(f"C2PA manifest unreadable: {exc}") from exc
    if reader is None:
        return None
    with reader:
        return json.loads(reader.json())  # type: ignore[no-any-return]
