"""``GET /``: the playground, one static page (no build step, no CDN) that runs an instruction over the
streamed ``POST /execute`` and shows the run's steps as they arrive. The page holds no secret: the key is
typed into it and sent only as the ``Authorization`` header of the page's own requests."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any
from collections.abc import Awaitable, Callable, MutableMapping

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# The page runs only its own inline script and talks only to this origin.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'")


@lru_cache(maxsize=1)
def playground_html() -> bytes:
    return resources.files("lmstudio_hub").joinpath("playground.html").read_bytes()


async def send_playground(send: Send, *, head: bool = False) -> None:
    page = playground_html()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(page)).encode()),
        (b"cache-control", b"no-cache"),
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else page})
