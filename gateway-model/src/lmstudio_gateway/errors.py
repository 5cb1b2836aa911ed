"""OpenAI-shaped error bodies, the form the ``openai`` client and LM Studio's clients read."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Send


def openai_error(message: str, *, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """``{"error": {...}}`` as the OpenAI API writes it."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """Answer an ASGI request with a JSON body (used by the middlewares, which sit outside FastAPI)."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})
