"""The ActivityPub protocol for Dreamloom, and nothing else.

No SQLAlchemy, Starlette, torch or `instance` imports live here. Modules:

- `errors`            the one exception tree
- `keys`              RSA key generation and cached PEM loading
- `urls`              host/origin normalisation, `same_origin`, `host_of`
- `structured_fields` the RFC 8941 subset that RFC 9421 needs
- `signatures`        signing and verification (draft-cavage and RFC 9421 live in
                      `httpsig/`), `SignatureAuth`
- `netguard`          the SSRF guard in the connection layer, `make_client`
- `fetch`             `SafeFetcher`, the one fetcher for every remote GET
- `jsonld`            bundled @context documents and an offline pyld loader
- `objects`           read-only views over activity dicts, builders for what we send
- `notes`             the Note we send for a post, and the FEP-044f quote vocabulary
- `walk`              bounded walks over remote collections and reply chains
- `addressing`        audiences and inbox selection with shared-inbox de-duplication
- `delivery`          POST one activity, classify the outcome, the one retry policy
"""
