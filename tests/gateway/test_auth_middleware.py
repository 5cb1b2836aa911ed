"""The gateway's key middleware on its own, in front of a plain ASGI app that answers 200 on every path.

Every route but ``/health`` needs exactly the key: near misses (a prefix, the key minus or plus one character,
an empty key, another scheme, the header twice) are refused on the OpenAI routes, LM Studio's ``/api/v0/*``
and FastAPI's docs alike. Driven in-process through httpx's ASGI transport: the middleware is the unit.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from lmstudio_gateway.auth import BearerKeyMiddleware

KEY = "sk-gw-0123456789abcdefghijklmnop"
PATHS = ["/v1/chat/completions", "/v1/models", "/api/v0/models", "/api/v0/models/smollm2-135m-instruct",
         "/docs", "/openapi.json", "/extras/tokenize"]


async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"reached the route"})


@pytest.fixture
async def client():
    app = BearerKeyMiddleware(downstream, api_key=KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
        yield c


NEAR_MISSES = [
    pytest.param({"Authorization": f"Bearer {KEY[:-1]}"}, id="key-minus-one-char"),
    pytest.param({"Authorization": f"Bearer {KEY[:8]}"}, id="prefix"),
    pytest.param({"Authorization": f"Bearer {KEY}x"}, id="key-plus-one-char"),
    pytest.param({"Authorization": "Bearer "}, id="empty-key"),
    pytest.param({"Authorization": "Bearer"}, id="scheme-only"),
    pytest.param({"Authorization": f"Basic {KEY}"}, id="other-scheme"),
    pytest.param({"Authorization": KEY}, id="no-scheme"),
    pytest.param({"X-Api-Key": KEY}, id="x-api-key-is-not-the-gateways-header"),
    pytest.param({}, id="no-header"),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("headers", NEAR_MISSES)
async def test_near_miss_keys_are_refused_everywhere(client, path, headers):
    response = await client.post(path, headers=headers) if path.startswith(("/v1/chat", "/extras")) else \
        await client.get(path, headers=headers)
    assert response.status_code == 401, (path, headers)
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["www-authenticate"] == "Bearer"
    assert "reached the route" not in response.text and KEY not in response.text


@pytest.mark.parametrize("path", PATHS)
async def test_the_exact_key_passes(client, path):
    response = await client.get(path, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200 and response.text == "reached the route"
    lower = await client.get(path, headers={"authorization": f"bearer  {KEY} "})  # scheme is case-insensitive
    assert lower.status_code == 200


async def test_the_authorization_header_twice_is_refused_even_with_the_right_key_first(client):
    for headers in ([("Authorization", f"Bearer {KEY}"), ("Authorization", "Bearer other")],
                    [("Authorization", f"Bearer {KEY}"), ("Authorization", f"Bearer {KEY}")],
                    [("Authorization", f"Bearer {KEY}, Bearer other")]):
        response = await client.get("/api/v0/models", headers=headers)
        assert response.status_code == 401 and "Ambiguous credentials" in response.json()["error"]["message"]


async def test_health_and_cors_preflight_are_open(client):
    assert (await client.get("/health")).status_code == 200
    preflight = await client.options("/v1/models", headers={"Origin": "http://x", "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 200


def test_an_empty_key_cannot_be_configured():
    with pytest.raises(ValueError):
        BearerKeyMiddleware(downstream, api_key="")
