"""What every endpoint driver offers the shared contract scenarios.

A driver stands one adapter (the Lambda handler, the Worker, the bridge hub) up against a real loopback
upstream and turns ``request(...)`` into that platform's own request shape, so one scenario table checks
the contract on every adapter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Union
from collections.abc import Mapping, Sequence

RequestBody = Union[str, bytes, None]
# A mapping, or (name, value) pairs when a header is sent more than once.
Headers = Union[Mapping[str, str], Sequence[tuple[str, str]]]


@dataclass
class EndpointConfig:
    """The deployment a driver stands up: its upstream, its secrets and its limits."""

    upstream_url: str
    upstream_token: Optional[str]
    client_key: str
    model: str
    deadline_seconds: float
    tool_mode: str = "auto"
    allowed_tools: Optional[list[str]] = None
    cache_ttl_seconds: int = 3600


@dataclass
class DriverResponse:
    """One response as the client sees it. ``headers`` keys are lower-case; ``json`` is {} for a non-JSON body."""

    status: int
    headers: dict[str, str]
    json: dict[str, Any]
    text: str = ""

    @classmethod
    def from_parts(cls, status: int, headers: Mapping[str, str], text: str) -> DriverResponse:
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        return cls(
            status=status,
            headers={k.lower(): v for k, v in headers.items()},
            json=data if isinstance(data, dict) else {},
            text=text,
        )


@dataclass
class StreamResult:
    """A Server-Sent Events answer as the client read it: each event's parsed ``data`` (``"[DONE]"`` kept as
    the string) with the monotonic time it arrived, and the comment lines (heartbeats)."""

    status: int
    headers: dict[str, str]
    events: list[Any] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    ids: list[Optional[str]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    text: str = ""

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [e for e in self.events if isinstance(e, dict)]

    @property
    def types(self) -> list[str]:
        return [c.get("type", "?") for c in self.chunks]

    @property
    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.text)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


class SSEReader:
    """Parses Server-Sent Events from text pieces as they arrive (the framing of the WHATWG spec)."""

    def __init__(self, result: StreamResult, clock: Any) -> None:
        self.result = result
        self.clock = clock
        self.buffer = ""

    def feed(self, piece: str) -> None:
        self.result.text += piece
        self.buffer += piece.replace("\r\n", "\n")
        while "\n\n" in self.buffer:
            block, self.buffer = self.buffer.split("\n\n", 1)
            data, event_id = [], None
            for line in block.split("\n"):
                if line.startswith(":"):
                    self.result.comments.append(line[1:].strip())
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
                elif line.startswith("id:"):
                    event_id = line[3:].strip()
            if not data:
                continue
            payload = "\n".join(data)
            self.result.events.append(payload if payload == "[DONE]" else json.loads(payload))
            self.result.arrived.append(self.clock())
            self.result.ids.append(event_id)


class EndpointDriver(Protocol):
    """A synchronous client for one adapter (an async adapter runs its coroutine with ``asyncio.run`` inside)."""

    name: str

    def request(
        self, method: str, path: str, *, headers: Optional[Headers] = None, body: RequestBody = None
    ) -> DriverResponse:
        """Send one HTTP request (``body`` raw: str or bytes, so malformed bodies reach the adapter as they are)."""
        ...

    def cache_entries(self) -> int:
        """How many entries the adapter's cache store holds now."""
        ...

    def close(self) -> None: ...
