"""The two HTTP signature schemes behind `activitypub.signatures`, one module each.

- `common`: what both schemes share — types, Mastodon's time window, header multimaps,
  HTTP dates, RSA sign/verify and key resolution with one refresh;
- `cavage`: draft-cavage-12 — signing string, `Signature` header parsing, `Digest`;
- `rfc9421`: RFC 9421 message signatures with RFC 9530 `Content-Digest`.

Import the public API from `activitypub.signatures`, not from here.
"""
