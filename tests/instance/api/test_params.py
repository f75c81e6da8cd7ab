"""instance/api/params.py: one reading of a request's query and body for every endpoint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from instance.api.auth import ApiError
from instance.api.params import Limits, Params, read

LIMITS = Limits(max_fields=20, max_files=1, max_file_bytes=8, max_bytes=4096, too_large="big")


async def echo(request: Request) -> JSONResponse:
    try:
        params = await read(request, LIMITS)
    except ApiError as exc:
        return JSONResponse({"error": exc.message}, exc.status)
    files = {k: v.decode() for k, v in params.files.items()}
    return JSONResponse({"values": params.values, "files": files})


@pytest.fixture
async def reader():
    app = Starlette(routes=[Route("/", echo, methods=["POST"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


async def test_forms_gather_lists_and_nest_keys_over_the_query(reader):
    """A form's `name[]` fields make a list and `a[b][c]` fields nest, as Rails reads them
    for Mastodon; the body's fields win over the query string's, which are read too."""
    r = await reader.post("/?status=query&only=q", data={
        "status": "body", "media_ids[]": ["2", "1"],
        "fields_attributes[1][name]": "b", "fields_attributes[0][name]": "a",
        "fields_attributes[0][value]": "x",
    })  # fmt: skip
    assert r.json()["values"] == {
        "status": "body", "only": "q", "media_ids": ["2", "1"],
        "fields_attributes": {"1": {"name": "b"}, "0": {"name": "a", "value": "x"}},
    }  # fmt: skip
    assert Params(r.json()["values"]).indexed("fields_attributes") == [
        {"name": "a", "value": "x"}, {"name": "b"},
    ]  # fmt: skip


async def test_files_are_read_up_to_one_byte_past_the_cap(reader):
    """An uploaded file comes back as bytes, one more than the caller's cap at most (so the
    caller can say it is too large); more files than allowed is 422."""
    r = await reader.post("/", data={"a": "1"}, files={"f": ("f.bin", b"0123456789abc")})
    assert r.json() == {"values": {"a": "1"}, "files": {"f": "012345678"}}
    two = {"f": ("f", b"1"), "g": ("g", b"2")}
    r = await reader.post("/", files=two)
    assert r.status_code == 422 and r.json()["error"].startswith("The form could not be read")


async def test_bodies_that_cannot_be_read_are_refused(reader):
    """Broken JSON or JSON that is not an object is 422, a NUL character 400, and a body
    whose Content-Length is past the cap 413 with the caller's words."""
    headers = {"content-type": "application/json"}
    assert (await reader.post("/", content=b"{", headers=headers)).status_code == 422
    assert (await reader.post("/", json=[1])).status_code == 422
    assert (await reader.post("/", json={"a": ["\x00"]})).status_code == 400
    assert (await reader.post("/", data={"a\x00": "b"})).status_code == 400
    r = await reader.post("/", json={"a": "x" * 5000})
    assert r.status_code == 413 and r.json() == {"error": "big"}


@pytest.mark.parametrize(("values", "read_as", "expected"), [
    ({"x": "yes"}, "flag", True), ({"x": "F"}, "flag", False), ({"x": ""}, "flag", None),
    ({"x": True}, "flag", True), ({}, "flag", None),
    ({"x": " 12 "}, "integer", 12), ({"x": 12}, "integer", 12), ({"x": "1.5"}, "number", 1.5),
    ({"x": "a"}, "ids", ["a"]), ({"x": ["a", "", None, 3]}, "ids", ["a", "3"]),
    ({}, "ids", []), ({"x": 7}, "text", "7"),
])  # fmt: skip
def test_typed_values(values: dict[str, Any], read_as: str, expected: Any) -> None:
    """Each accessor reads the spellings clients send: Mastodon's truthy and falsy words
    and JSON's booleans, numbers as digits or JSON numbers, one id or a list of them."""
    assert getattr(Params(values), read_as)("x") == expected


@pytest.mark.parametrize(("values", "read_as", "said"), [
    ({"x": "maybe"}, "flag", "x must be true or false"),
    ({"x": ["1"]}, "flag", "x must be true or false"),
    ({"x": "seven"}, "integer", "x must be a whole number"),
    ({"x": "many"}, "number", "x must be a number"),
    ({"x": {"a": 1}}, "text", "x must be text"),
    ({"x": [{"a": 1}]}, "ids", "x must be a list of ids"),
    ({"x": "http://127.0.0.1/a.png"}, "file", "x must be an uploaded file"),
    ({"x": "fields"}, "indexed", "x must be a list of fields"),
])  # fmt: skip
def test_values_of_the_wrong_kind_are_422_naming_them(values, read_as, said) -> None:
    """A value that is not what the parameter takes is 422 in Mastodon's error shape,
    naming the parameter and what it must be."""
    with pytest.raises(ApiError) as raised:
        getattr(Params(values), read_as)("x")
    assert raised.value.status == 422 and raised.value.message == said
